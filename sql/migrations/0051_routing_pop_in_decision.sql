-- The screen pop leaves with the decision (store/routing_queries.cpp): the statement that routes
-- a call (offer_call, reroute_call, recheck_waiting_call, pick_call) reads screen_pop(call_id)
-- for the operator it reserved in the same round trip, instead of a second statement after it
-- (one round trip fewer per served call; bench_routing, docs/benchmarks.md).
--
-- An admin's screen_pop that fails (or times out) must cost the pop its customer, never the
-- decision: the failure is caught here (a subtransaction around screen_pop only), and the call
-- centre reads the pop again on its own and logs why. Volatile on purpose: its statements take a fresh snapshot,
-- so they see the calls row the decision wrote earlier in the same statement (a STABLE function
-- would read with the statement's first snapshot and find no call).
CREATE FUNCTION checked_screen_pop(p_call_id bigint, OUT customer text, OUT customer_read boolean)
LANGUAGE plpgsql AS $$
BEGIN
  customer_read := false;
  IF p_call_id IS NULL THEN
    RETURN;
  END IF;
  BEGIN
    customer := screen_pop(p_call_id)::text;
    customer_read := true;
  -- query_canceled too (OTHERS leaves it out): a CRM lookup that runs into statement_timeout
  -- must not roll back the reservation it was asked about
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    customer := NULL;
  END;
END $$;
