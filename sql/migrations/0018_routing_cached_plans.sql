-- The routing functions a call's life runs once each (the reservation confirmed or given back,
-- the screen pop, a waiting call withdrawn) were SQL functions: PostgreSQL plans a SQL function
-- that it cannot inline on every call (pg_stat_statements under bench_routing: 0.2-0.45 ms
-- each, most of it planning). As plpgsql they keep their plans per session. Same contracts.

CREATE OR REPLACE FUNCTION confirm_reservation(p_operator_id bigint, p_call_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  WITH done AS (
    UPDATE presence p SET state = 'ringing', reserved_until = NULL, since = now()
     WHERE p.operator_id = p_operator_id AND p.state = 'reserved' AND p.current_call_id = p_call_id
    RETURNING p.tenant_id)
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id)
  SELECT d.tenant_id, p_call_id, 'reservation_confirmed', p_operator_id FROM done d;
  RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION release_reservation(p_operator_id bigint, p_call_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  WITH done AS (
    UPDATE presence p SET state = 'ready', current_call_id = NULL, reserved_until = NULL, since = now()
     WHERE p.operator_id = p_operator_id AND p.state = 'reserved' AND p.current_call_id = p_call_id
    RETURNING p.tenant_id)
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id)
  SELECT d.tenant_id, p_call_id, 'reservation_released', p_operator_id FROM done d;
  RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION withdraw_waiting_call(p_call_id bigint, p_reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  WITH gone AS (
    DELETE FROM waiting_calls w WHERE w.call_id = p_call_id
    RETURNING w.tenant_id, w.queue_id)
  INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
  SELECT g.tenant_id, p_call_id, 'withdrawn', g.queue_id, jsonb_build_object('reason', p_reason) FROM gone g;
  RETURN FOUND;
END $$;

-- The default screen pop; an admin's replacement (any language) replaces this one.
CREATE OR REPLACE FUNCTION screen_pop(p_call_id bigint) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT to_jsonb(cu) FROM calls c JOIN customers cu ON cu.tenant_id = c.tenant_id AND cu.phone = c.caller
           WHERE c.call_id = p_call_id);
END $$;
