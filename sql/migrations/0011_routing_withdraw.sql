-- A call that stops waiting without an operator (the caller hung up, or the PBX was already
-- answered with the fallback because the decision came too late) leaves the waiting list, so no
-- operator is ever offered a call that is gone.
CREATE FUNCTION withdraw_waiting_call(p_call_id bigint, p_reason text) RETURNS boolean LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM waiting_calls w WHERE w.call_id = p_call_id
    RETURNING w.tenant_id, w.queue_id),
  logged AS (
    INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
    SELECT g.tenant_id, p_call_id, 'withdrawn', g.queue_id, jsonb_build_object('reason', p_reason) FROM gone g)
  SELECT EXISTS (SELECT 1 FROM gone)
$$;
