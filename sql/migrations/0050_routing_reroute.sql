-- A call comes back to its route point while ringing an operator (ours or the PBX's no-answer
-- timer deflected it): routing decides again for the same record (one record per call), with
-- the same rules. Whoever it was offered to and did not answer is not ready (no answer) first,
-- in this transaction: he holds the call's one offer (presence_one_operator_per_call) and must
-- not get it again.
CREATE FUNCTION reroute_call(p_call_id bigint, p_node text DEFAULT NULL, p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  v_tenant bigint;
BEGIN
  -- presence before calls, the order the call-record writer locks them in (no deadlock with it)
  UPDATE presence SET state = 'not_ready', reason = 'no_answer', current_call_id = NULL, reserved_until = NULL,
         since = clock_timestamp()
   WHERE current_call_id = p_call_id AND state IN ('reserved', 'ringing');
  SELECT c.tenant_id INTO v_tenant FROM calls c WHERE c.call_id = p_call_id AND c.ended_at IS NULL;
  IF NOT FOUND THEN
    RETURN routing_decision(p_call_id, 'gone', 'the call has ended');
  END IF;
  INSERT INTO call_events (tenant_id, call_id, kind) VALUES (v_tenant, p_call_id, 'rerouted');
  RETURN routing_apply(p_call_id, route_call(p_call_id), p_node, p_reserve_seconds);
END $$;
