-- Less work in PostgreSQL per route decision (bench/bench_routing.cpp, figures in
-- docs/benchmarks.md), same decisions:
-- * reserve_operator runs generic plans: left to the plan cache, every strategy's statement was
--   planned again on every call (custom plans won on estimated cost), ~0.25 ms per decision;
--   the sticky operator gets his own statement, because a generic plan cannot turn
--   "v_only IS NULL OR operator_id = v_only" into a key lookup.
-- * a call nobody ready reaches at the first skill's level is known from one index probe; the
--   strategy's walk read every ready holder of the skill (~2,000 at 10,000 operators: 5 ms).
-- * pick_operator reads a call with one way to qualify (no escalation step reached, no overflow
--   queue) from its waiting_calls row instead of through call_requirements().
-- * the calls row of a call that gets an operator at once is updated once, not twice: every
--   update of a row inserted in the same transaction re-checks all its foreign keys, and the
--   final_queue_id one is not HOT (an indexed column).
-- * routing_apply skips the skill-name lookups when route_call asked for no extra skill.

CREATE OR REPLACE FUNCTION reserve_operator(p_call_id bigint, p_tenant_id bigint, p_queue queues, p_skill_ids bigint[],
                                            p_levels smallint[], p_until timestamptz, p_sticky bigint)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  v_skill bigint := coalesce(p_skill_ids[1], 0);
  v_level smallint := coalesce(p_levels[1], 0);
  v_ids bigint[] := coalesce(p_skill_ids[2:], '{}');
  v_levels smallint[] := coalesce(p_levels[2:], '{}');
  v_chosen bigint;
  v_device text;
  v_from bigint;  -- round robin: operators after this id
BEGIN
  -- nobody ready at the first skill's level: known from the level index at once, where the
  -- strategies' order indexes would walk every ready holder of the skill below that level
  IF v_level > 1 AND NOT EXISTS (SELECT 1 FROM ready_skills rs
                                  WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level) THEN
    RETURN;
  END IF;
  IF p_queue.strategy = 'sticky' AND p_sticky IS NOT NULL THEN
    WITH candidate AS (
      SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
       WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.operator_id = p_sticky
         AND rs.level >= v_level AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(v_ids, v_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    IF v_chosen IS NOT NULL THEN
      RETURN QUERY SELECT v_chosen, v_device;
      RETURN;
    END IF;
    -- the sticky operator is not free: longest idle
  END IF;
  IF p_queue.strategy IN ('longest_idle', 'sticky') THEN
    WITH candidate AS (
      SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
       WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(v_ids, v_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       ORDER BY rs.last_call_ended NULLS FIRST, rs.operator_id
       LIMIT 1
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF p_queue.strategy = 'fewest_calls' THEN
    WITH candidate AS (
      SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
       WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(v_ids, v_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       ORDER BY rs.calls_handled, rs.last_call_ended NULLS FIRST, rs.operator_id
       LIMIT 1
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF p_queue.strategy = 'best_skill' THEN
    WITH candidate AS (
      SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
       WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(v_ids, v_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       ORDER BY rs.level DESC, rs.last_call_ended NULLS FIRST, rs.operator_id
       LIMIT 1
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSE  -- round robin: after the queue's last pick, then a second pass from the lowest id
    SELECT rr.last_operator_id INTO v_from FROM queue_round_robin rr WHERE rr.queue_id = p_queue.queue_id;
    v_from := coalesce(v_from, 0);
    LOOP
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.operator_id > v_from
           AND p.operator_id > v_from  -- a generic plan may merge-join presence in id order: from the pointer
           AND rs.level >= v_level AND p.state = 'ready'
           AND NOT EXISTS (SELECT 1 FROM unnest(v_ids, v_levels) AS r(skill_id, min_level)
                            WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                               WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                                 AND os.level >= r.min_level))
         ORDER BY rs.operator_id
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
      EXIT WHEN v_chosen IS NOT NULL OR v_from = 0;
      v_from := 0;
    END LOOP;
    IF v_chosen IS NOT NULL THEN
      INSERT INTO queue_round_robin AS rr (queue_id, tenant_id, last_operator_id)
      VALUES (p_queue.queue_id, p_queue.tenant_id, v_chosen)
      ON CONFLICT (queue_id) DO UPDATE SET last_operator_id = excluded.last_operator_id;
    END IF;
  END IF;
  IF v_chosen IS NOT NULL THEN
    RETURN QUERY SELECT v_chosen, v_device;
  END IF;
END $$;

-- Same contract as in 0013. A call with one way to qualify (no escalation step reached, not
-- offered to an overflow queue) has exactly call_requirements' alternative 0: its own skills
-- at their levels, read here from its row.
CREATE OR REPLACE FUNCTION pick_operator(p_call_id bigint, p_reserve_seconds integer DEFAULT 10)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  w waiting_calls;
  q queues;
  a record;
  v_until timestamptz := now() + make_interval(secs => p_reserve_seconds);
  v_ids bigint[];
  v_levels smallint[];
  v_sticky bigint;
  v_chosen bigint;
  v_device text;
BEGIN
  SELECT * INTO w FROM waiting_calls wc WHERE wc.call_id = p_call_id FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT * INTO q FROM queues WHERE queue_id = w.queue_id;
  IF q.strategy = 'sticky' THEN
    SELECT coalesce(prev.last_operator_id, prev.operator_id) INTO v_sticky
      FROM calls me JOIN calls prev ON prev.tenant_id = me.tenant_id AND prev.customer_id = me.customer_id
     WHERE me.call_id = p_call_id AND prev.call_id <> me.call_id AND prev.answered_at IS NOT NULL
       AND prev.ended_at > now() - make_interval(days => q.sticky_days)
     ORDER BY prev.ended_at DESC
     LIMIT 1;
  END IF;
  IF cardinality(w.also_queue_ids) = 0
     AND NOT EXISTS (SELECT 1 FROM queue_escalation_steps s
                      WHERE s.queue_id = w.queue_id AND s.after_seconds <= extract(epoch FROM now() - w.queue_since)) THEN
    SELECT coalesce(array_agg(r.skill_id ORDER BY r.min_level DESC, r.skill_id), '{}'),
           coalesce(array_agg(r.min_level ORDER BY r.min_level DESC, r.skill_id), '{}')
      INTO v_ids, v_levels
      FROM (SELECT x.skill_id, greatest(1, x.min_level)::smallint AS min_level
              FROM unnest(w.skill_ids, w.skill_levels) AS x(skill_id, min_level)
             WHERE x.skill_id IS NOT NULL) r;
    SELECT ro.operator_id, ro.device INTO v_chosen, v_device
      FROM reserve_operator(p_call_id, w.tenant_id, q, v_ids, v_levels, v_until, v_sticky) ro;
  ELSE
    FOR a IN
      SELECT r.alt, coalesce(array_agg(r.skill_id ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS ids,
             coalesce(array_agg(r.min_level ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS levels
        FROM call_requirements(p_call_id) r
       GROUP BY r.alt
       ORDER BY r.alt
    LOOP
      SELECT ro.operator_id, ro.device INTO v_chosen, v_device
        FROM reserve_operator(p_call_id, w.tenant_id, q, a.ids, a.levels, v_until, v_sticky) ro;
      EXIT WHEN v_chosen IS NOT NULL;
    END LOOP;
  END IF;
  IF v_chosen IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM waiting_calls wc WHERE wc.call_id = p_call_id;
  -- first queue and queue time too, so a call reserved at once has its calls row updated once
  UPDATE calls c SET final_queue_id = w.queue_id, queue_id = coalesce(c.queue_id, w.queue_id),
                     queued_at = coalesce(c.queued_at, now())
   WHERE c.call_id = p_call_id;
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
  VALUES (w.tenant_id, p_call_id, 'reserved', v_chosen, w.queue_id, v_device,
          jsonb_build_object('strategy', q.strategy, 'waited_seconds', round(extract(epoch FROM now() - w.waiting_since), 3)));
  RETURN QUERY SELECT v_chosen, v_device;
END $$;

-- Same contract as in 0010; the overflow-at-once queue goes in with the waiting_calls row, and
-- the calls row gets its first queue after pick_operator, only if pick_operator did not write it.
CREATE OR REPLACE FUNCTION routing_enter_queue(p_call_id bigint, p_queue_id bigint, p_priority integer,
                                               p_skill_ids bigint[], p_skill_levels smallint[], p_node text,
                                               p_reserve_seconds integer, p_depth integer, p_reason text)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  q queues;
  v_tenant bigint;
  v_ids bigint[];
  v_levels smallint[];
  v_op record;
BEGIN
  SELECT * INTO q FROM queues WHERE queue_id = p_queue_id;
  v_tenant := q.tenant_id;
  IF NOT queue_is_open(q.queue_id, routing_now()) THEN
    RETURN routing_close(p_call_id, q, p_reason || '; queue ' || q.name || ' closed (opening hours)');
  END IF;
  -- the queue's skills plus the requested ones, highest level first (best_skill ranks by the first)
  SELECT coalesce(array_agg(s.skill_id ORDER BY s.lvl DESC, s.skill_id), '{}'),
         coalesce(array_agg(s.lvl ORDER BY s.lvl DESC, s.skill_id), '{}')
    INTO v_ids, v_levels
    FROM (SELECT x.skill_id, max(x.lvl)::smallint AS lvl
            FROM (SELECT qs.skill_id, qs.min_level AS lvl FROM queue_skills qs WHERE qs.queue_id = q.queue_id
                  UNION ALL
                  SELECT r.skill_id, r.lvl FROM unnest(p_skill_ids, p_skill_levels) AS r(skill_id, lvl)) x
           GROUP BY x.skill_id) s;
  INSERT INTO waiting_calls AS wc (call_id, tenant_id, queue_id, priority, queue_since, skill_ids, skill_levels,
                                   also_queue_ids, node)
  VALUES (p_call_id, v_tenant, q.queue_id, p_priority + q.priority, now(), v_ids, v_levels,
          CASE WHEN q.overflow_queue_id IS NOT NULL AND q.overflow_after_seconds = 0 THEN ARRAY[q.overflow_queue_id]
               ELSE '{}' END,
          p_node)
  ON CONFLICT (call_id) DO UPDATE
    SET queue_id = excluded.queue_id, priority = excluded.priority, queue_since = excluded.queue_since,
        skill_ids = excluded.skill_ids, skill_levels = excluded.skill_levels, also_queue_ids = excluded.also_queue_ids;
  SELECT * INTO v_op FROM pick_operator(p_call_id, p_reserve_seconds);
  UPDATE calls c SET queue_id = coalesce(c.queue_id, q.queue_id), queued_at = coalesce(c.queued_at, now())
   WHERE c.call_id = p_call_id AND (c.queue_id IS NULL OR c.queued_at IS NULL);
  IF v_op.operator_id IS NOT NULL THEN
    RETURN routing_decision(p_call_id, 'operator', p_reason, q.queue_id, NULL, v_op.operator_id, v_op.device);
  END IF;
  IF q.max_waiting_calls IS NOT NULL
     AND (SELECT count(*) FROM waiting_calls wc WHERE wc.queue_id = q.queue_id AND wc.call_id <> p_call_id)
         >= q.max_waiting_calls THEN
    IF q.overflow_queue_id IS NOT NULL AND p_depth < 5 THEN
      INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
      VALUES (v_tenant, p_call_id, 'overflowed', q.queue_id,
              jsonb_build_object('to_queue_id', q.overflow_queue_id, 'reason', 'max_waiting_calls'));
      RETURN routing_enter_queue(p_call_id, q.overflow_queue_id, p_priority, '{}', '{}', p_node, p_reserve_seconds,
                                 p_depth + 1, p_reason || '; queue ' || q.name || ' full');
    END IF;
    RETURN routing_close(p_call_id, q, p_reason || '; queue ' || q.name || ' full');
  END IF;
  RETURN routing_waiting(p_call_id, q, p_reserve_seconds, p_reason);
END $$;

-- Same contract as in 0010; no extra skills asked (the common case): no skill-name lookups.
CREATE OR REPLACE FUNCTION routing_apply(p_call_id bigint, t route_target, p_node text, p_reserve_seconds integer)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  v_tenant bigint;
  v_unknown text;
  v_ids bigint[] := '{}';
  v_levels smallint[] := '{}';
BEGIN
  SELECT c.tenant_id INTO v_tenant FROM calls c WHERE c.call_id = p_call_id;
  IF t.destination IS NOT NULL THEN
    INSERT INTO call_events (tenant_id, call_id, kind, device, detail)
    VALUES (v_tenant, p_call_id, 'routed', t.destination, jsonb_build_object('reason', coalesce(t.note, '')));
    RETURN routing_decision(p_call_id, 'destination', coalesce(t.note, 'route_call chose a destination'), NULL,
                            t.destination);
  END IF;
  IF t.queue_id IS NULL THEN
    INSERT INTO call_events (tenant_id, call_id, kind, detail)
    VALUES (v_tenant, p_call_id, 'default_routed', jsonb_build_object('reason', coalesce(t.note, '')));
    RETURN routing_decision(p_call_id, 'default', coalesce(t.note, 'route_call chose no queue'));
  END IF;
  IF NOT EXISTS (SELECT 1 FROM queues q WHERE q.queue_id = t.queue_id AND q.tenant_id = v_tenant) THEN
    RAISE EXCEPTION 'route_call returned queue % which is not a queue of tenant %', t.queue_id, v_tenant;
  END IF;
  IF t.skills IS NOT NULL AND t.skills <> '{}' THEN
    -- a skill name the tenant does not have is an admin's typo: fail loudly (the PBX gets the fallback)
    SELECT k.key INTO v_unknown FROM jsonb_each_text(t.skills) k
     WHERE NOT EXISTS (SELECT 1 FROM skills s WHERE s.tenant_id = v_tenant AND s.name = k.key)
     LIMIT 1;
    IF v_unknown IS NOT NULL THEN
      RAISE EXCEPTION 'route_call asked for unknown skill "%"', v_unknown;
    END IF;
    SELECT coalesce(array_agg(s.skill_id), '{}'), coalesce(array_agg(k.value::smallint), '{}') INTO v_ids, v_levels
      FROM jsonb_each_text(t.skills) k JOIN skills s ON s.tenant_id = v_tenant AND s.name = k.key;
  END IF;
  RETURN routing_enter_queue(p_call_id, t.queue_id, coalesce(t.priority, 0), v_ids, v_levels, p_node,
                             p_reserve_seconds, 0, coalesce(t.note, 'route_call chose queue ' || t.queue_id));
END $$;
