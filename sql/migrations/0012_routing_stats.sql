-- Staffing and handle time per queue, refreshed every few seconds by the router
-- (refresh_queue_stats), so a queued call's expected wait and the ratio overflow read one row
-- instead of counting the operators of a queue on every call. Stale or missing rows fall back
-- to the live count.

CREATE TABLE queue_stats (
  queue_id       bigint PRIMARY KEY REFERENCES queues ON DELETE CASCADE,
  tenant_id      bigint NOT NULL REFERENCES tenants,
  staffed        integer NOT NULL CHECK (staffed >= 0),
  handle_seconds numeric(10, 3) NOT NULL CHECK (handle_seconds > 0),
  refreshed_at   timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
  IF to_regprocedure('current_tenant_id()') IS NULL THEN
    RETURN;
  END IF;
  ALTER TABLE queue_stats ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON queue_stats USING (tenant_id = current_tenant_id())
    WITH CHECK (tenant_id = current_tenant_id());
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_tenant') THEN
    GRANT SELECT ON queue_stats TO switchboard_tenant;
  END IF;
END $$;

-- The live count of operators working a queue keeps its 0010 body under a new name; the name
-- queue_staffing (which routing_waiting calls) becomes the cached read below.
ALTER FUNCTION queue_staffing(bigint) RENAME TO queue_staffing_count;

-- Mean handle time (talk + wrap-up) of the last 50 calls answered from the queue, or its default.
CREATE FUNCTION queue_handle_seconds(p_queue_id bigint) RETURNS numeric LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT avg(r.handle) FROM (
       SELECT extract(epoch FROM c.ended_at - c.answered_at) + coalesce(c.wrap_up_seconds, 0) AS handle
         FROM calls c
        WHERE c.final_queue_id = p_queue_id AND c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL
        ORDER BY c.ended_at DESC
        LIMIT 50) r),
    (SELECT q.default_handle_seconds FROM queues q WHERE q.queue_id = p_queue_id))
$$;

-- Staffing as routing reads it: the refreshed figure when it is recent, else the live count.
CREATE OR REPLACE FUNCTION queue_staffing(p_queue_id bigint) RETURNS integer LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_staffed integer;
BEGIN
  SELECT s.staffed INTO v_staffed FROM queue_stats s
   WHERE s.queue_id = p_queue_id AND s.refreshed_at > now() - interval '30 seconds';
  RETURN coalesce(v_staffed, queue_staffing_count(p_queue_id));
END $$;

CREATE OR REPLACE FUNCTION expected_wait_seconds(p_queue_id bigint, p_position integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_staffed integer;
  v_handle numeric;
BEGIN
  SELECT s.staffed, s.handle_seconds INTO v_staffed, v_handle FROM queue_stats s
   WHERE s.queue_id = p_queue_id AND s.refreshed_at > now() - interval '30 seconds';
  IF NOT FOUND THEN
    v_staffed := queue_staffing_count(p_queue_id);
    v_handle := queue_handle_seconds(p_queue_id);
  END IF;
  IF v_staffed = 0 THEN
    RETURN NULL;  -- nobody staffs the queue: no bound to announce
  END IF;
  RETURN ceil(v_handle * p_position / v_staffed)::integer;
END $$;

-- Recomputes every queue's figures; returns how many queues were refreshed.
CREATE FUNCTION refresh_queue_stats() RETURNS integer LANGUAGE sql AS $$
  WITH fresh AS (
    INSERT INTO queue_stats AS s (queue_id, tenant_id, staffed, handle_seconds, refreshed_at)
    SELECT q.queue_id, q.tenant_id, queue_staffing_count(q.queue_id), queue_handle_seconds(q.queue_id), now()
      FROM queues q
    ON CONFLICT (queue_id) DO UPDATE
      SET staffed = excluded.staffed, handle_seconds = excluded.handle_seconds, refreshed_at = excluded.refreshed_at
    RETURNING 1)
  SELECT count(*)::integer FROM fresh
$$;
