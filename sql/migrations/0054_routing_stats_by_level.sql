-- refresh_queue_stats() counted each queue's staff with queue_staffing_count, one join of the
-- queue's skills with their holders per queue: 130-190 ms of one backend every stats_interval
-- at 10,000 operators and 50 queues (switchboard-bench, docs/benchmarks.md), growing with
-- operators x queues. Now one pass over the working operators' skills for all queues: holders per
-- skill and level (what a one-skill queue counts, the common case), the join only for queues
-- that need several skills, a count per tenant for queues with none. 18 ms on the same data, the
-- same figures (tests/routing/sql_test.cpp compares them with queue_staffing_count).
CREATE OR REPLACE FUNCTION refresh_queue_stats() RETURNS integer LANGUAGE sql AS $$
  WITH working AS (  -- logged in and not in a not-ready pause, as queue_staffing_count counts
    SELECT p.operator_id, p.tenant_id FROM presence p WHERE p.state NOT IN ('logged_out', 'not_ready')),
  needs AS (
    SELECT qs.queue_id, count(*) AS skills, min(qs.skill_id) AS skill_id, min(qs.min_level) AS min_level
      FROM queue_skills qs
     GROUP BY qs.queue_id),
  holders AS (
    SELECT os.skill_id, os.level, count(*) AS operators
      FROM operator_skills os JOIN working w ON w.operator_id = os.operator_id
     GROUP BY os.skill_id, os.level),
  one_skill AS (
    SELECT n.queue_id, sum(h.operators)::integer AS staffed
      FROM needs n JOIN holders h ON h.skill_id = n.skill_id AND h.level >= n.min_level
     WHERE n.skills = 1
     GROUP BY n.queue_id),
  several_skills AS (
    SELECT m.queue_id, count(*)::integer AS staffed
      FROM (SELECT qs.queue_id
              FROM queue_skills qs
              JOIN needs n ON n.queue_id = qs.queue_id AND n.skills > 1
              JOIN operator_skills os ON os.skill_id = qs.skill_id AND os.level >= qs.min_level
              JOIN working w ON w.operator_id = os.operator_id
             GROUP BY qs.queue_id, n.skills, os.operator_id
            HAVING count(*) = n.skills) m
     GROUP BY m.queue_id),
  per_tenant AS (
    SELECT w.tenant_id, count(*)::integer AS staffed FROM working w GROUP BY w.tenant_id),
  fresh AS (
    INSERT INTO queue_stats AS s (queue_id, tenant_id, staffed, handle_seconds, refreshed_at)
    SELECT q.queue_id, q.tenant_id,
           coalesce(CASE WHEN n.queue_id IS NULL THEN t.staffed WHEN n.skills = 1 THEN o.staffed ELSE k.staffed END, 0),
           queue_handle_seconds(q.queue_id), now()
      FROM queues q
      LEFT JOIN needs n ON n.queue_id = q.queue_id
      LEFT JOIN one_skill o ON o.queue_id = q.queue_id
      LEFT JOIN several_skills k ON k.queue_id = q.queue_id
      LEFT JOIN per_tenant t ON t.tenant_id = q.tenant_id
    ON CONFLICT (queue_id) DO UPDATE
      SET staffed = excluded.staffed, handle_seconds = excluded.handle_seconds, refreshed_at = excluded.refreshed_at
    RETURNING 1)
  SELECT count(*)::integer FROM fresh
$$;
