-- Faster operator choice at 10,000 operators (measured by bench/bench_routing.cpp): the helpers
-- become plpgsql (their plans are cached per session instead of planned on every call), the
-- skill check is written inline in the choosing statement (no function call per candidate),
-- and each skill alternative is first checked through the skill index, so a call nobody can
-- take costs the skill's holders, not a scan of every ready operator.

CREATE OR REPLACE FUNCTION call_requirements(p_call_id bigint)
RETURNS TABLE (alt integer, skill_id bigint, min_level smallint) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH w AS (SELECT wc.*, extract(epoch FROM now() - wc.queue_since) AS waited
               FROM waiting_calls wc WHERE wc.call_id = p_call_id),
  level_drop AS (
    SELECT coalesce((SELECT s.level_drop FROM w JOIN queue_escalation_steps s
                        ON s.queue_id = w.queue_id AND s.after_seconds <= w.waited
                      ORDER BY s.after_seconds DESC LIMIT 1), 0) AS d)
  SELECT 0, r.skill_id, greatest(1, r.min_level - (SELECT d FROM level_drop))::smallint
    FROM w, unnest(w.skill_ids, w.skill_levels) AS r(skill_id, min_level)
  UNION ALL
  SELECT 0, NULL::bigint, NULL::smallint FROM w WHERE cardinality(w.skill_ids) = 0
  UNION ALL
  SELECT 1000 + (row_number() OVER (ORDER BY es.after_seconds, es.skill_id))::integer, es.skill_id, es.min_level
    FROM w JOIN queue_escalation_skills es ON es.queue_id = w.queue_id AND es.after_seconds <= w.waited
  UNION ALL
  SELECT 2000 + o.n::integer, qs.skill_id, qs.min_level
    FROM w, unnest(w.also_queue_ids) WITH ORDINALITY AS o(queue_id, n)
    LEFT JOIN queue_skills qs ON qs.queue_id = o.queue_id;
END $$;

CREATE OR REPLACE FUNCTION call_accepts_operator(p_call_id bigint, p_operator_id bigint) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN coalesce((
    SELECT bool_or(a.ok) FROM (
      SELECT r.alt, bool_and(r.skill_id IS NULL OR EXISTS (
               SELECT 1 FROM operator_skills os
                WHERE os.operator_id = p_operator_id AND os.skill_id = r.skill_id AND os.level >= r.min_level)) AS ok
        FROM call_requirements(p_call_id) r
       GROUP BY r.alt) a), false);
END $$;

CREATE OR REPLACE FUNCTION queue_is_open(p_queue_id bigint, p_at timestamptz) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM queue_opening_hours h WHERE h.queue_id = p_queue_id)
      OR EXISTS (SELECT 1
                   FROM queue_opening_hours h JOIN tenants t ON t.tenant_id = h.tenant_id
                  WHERE h.queue_id = p_queue_id
                    AND h.iso_dow = extract(isodow FROM p_at AT TIME ZONE t.time_zone)
                    AND (p_at AT TIME ZONE t.time_zone)::time >= h.opens
                    AND (p_at AT TIME ZONE t.time_zone)::time < h.closes);
END $$;

-- Reserves the best ready operator of the tenant who holds every (skill, level) pair given (none:
-- anyone), by the queue's strategy: the choice and the reservation are one statement each time.
-- p_sticky is the operator who last served the caller (sticky strategy), if any.
CREATE FUNCTION reserve_operator(p_call_id bigint, p_tenant_id bigint, p_queue queues, p_skill_ids bigint[],
                                 p_levels smallint[], p_until timestamptz, p_sticky bigint)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_chosen bigint;
  v_device text;
  v_last bigint;
BEGIN
  -- nobody qualified and ready: known from the first skill's index (the ORDER BY keeps the plan
  -- on it; the join checks that skill, the rest inline), without a scan of every ready operator
  IF cardinality(p_skill_ids) > 0 THEN
    PERFORM 1 FROM operator_skills os JOIN presence p ON p.operator_id = os.operator_id
      WHERE os.skill_id = p_skill_ids[1] AND os.level >= p_levels[1]
        AND p.state = 'ready' AND p.tenant_id = p_tenant_id
        AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids[2:], p_levels[2:]) AS r(skill_id, min_level)
                         WHERE NOT EXISTS (SELECT 1 FROM operator_skills o2
                                            WHERE o2.operator_id = p.operator_id AND o2.skill_id = r.skill_id
                                              AND o2.level >= r.min_level))
      ORDER BY os.skill_id DESC, os.level DESC
      LIMIT 1;
    IF NOT FOUND THEN
      RETURN;
    END IF;
  END IF;

  IF p_queue.strategy = 'sticky' AND p_sticky IS NOT NULL THEN
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.operator_id = p_sticky AND p.tenant_id = p_tenant_id AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids, p_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF p_queue.strategy = 'best_skill' AND cardinality(p_skill_ids) > 0 THEN
    -- ranked by level in the first (highest-level) skill, then longest idle; the join checks the
    -- first skill, the rest inline. Costs the ready holders of the top level, not every operator.
    WITH candidate AS (
      SELECT p.operator_id FROM operator_skills os JOIN presence p ON p.operator_id = os.operator_id
       WHERE os.skill_id = p_skill_ids[1] AND os.level >= p_levels[1]
         AND p.tenant_id = p_tenant_id AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids[2:], p_levels[2:]) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills o2
                                             WHERE o2.operator_id = p.operator_id AND o2.skill_id = r.skill_id
                                               AND o2.level >= r.min_level))
       ORDER BY os.level DESC, p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF p_queue.strategy = 'fewest_calls' THEN
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.tenant_id = p_tenant_id AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids, p_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       ORDER BY p.calls_handled, p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF p_queue.strategy = 'round_robin' THEN
    -- the first qualified operator after the queue's last pick; a second pass from the lowest id
    SELECT rr.last_operator_id INTO v_last FROM queue_round_robin rr WHERE rr.queue_id = p_queue.queue_id;
    v_last := coalesce(v_last, 0);
    LOOP
      WITH candidate AS (
        SELECT p.operator_id FROM presence p
         WHERE p.tenant_id = p_tenant_id AND p.state = 'ready' AND p.operator_id > v_last
           AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids, p_levels) AS r(skill_id, min_level)
                            WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                               WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                                 AND os.level >= r.min_level))
         ORDER BY p.operator_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
      EXIT WHEN v_chosen IS NOT NULL OR v_last = 0;
      v_last := 0;
    END LOOP;
    IF v_chosen IS NOT NULL THEN
      INSERT INTO queue_round_robin AS rr (queue_id, tenant_id, last_operator_id)
      VALUES (p_queue.queue_id, p_queue.tenant_id, v_chosen)
      ON CONFLICT (queue_id) DO UPDATE SET last_operator_id = excluded.last_operator_id;
    END IF;
  END IF;

  -- longest idle: the strategy itself, and what sticky and best skill fall back to
  IF v_chosen IS NULL AND p_queue.strategy NOT IN ('fewest_calls', 'round_robin') THEN
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.tenant_id = p_tenant_id AND p.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM unnest(p_skill_ids, p_levels) AS r(skill_id, min_level)
                          WHERE NOT EXISTS (SELECT 1 FROM operator_skills os
                                             WHERE os.operator_id = p.operator_id AND os.skill_id = r.skill_id
                                               AND os.level >= r.min_level))
       ORDER BY p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  END IF;
  IF v_chosen IS NOT NULL THEN
    RETURN QUERY SELECT v_chosen, v_device;
  END IF;
END $$;

-- The call's skill alternatives in order (its own skills, then escalation skills, then overflow
-- queues): the first alternative with a ready operator decides, by the queue's strategy.
CREATE OR REPLACE FUNCTION pick_operator(p_call_id bigint, p_reserve_seconds integer DEFAULT 10)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  w waiting_calls;
  q queues;
  a record;
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
  FOR a IN
    SELECT r.alt, coalesce(array_agg(r.skill_id ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS ids,
           coalesce(array_agg(r.min_level ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS levels
      FROM call_requirements(p_call_id) r
     GROUP BY r.alt
     ORDER BY r.alt
  LOOP
    SELECT ro.operator_id, ro.device INTO v_chosen, v_device
      FROM reserve_operator(p_call_id, w.tenant_id, q, a.ids, a.levels,
                            now() + make_interval(secs => p_reserve_seconds), v_sticky) ro;
    EXIT WHEN v_chosen IS NOT NULL;
  END LOOP;
  IF v_chosen IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM waiting_calls wc WHERE wc.call_id = p_call_id;
  UPDATE calls SET final_queue_id = w.queue_id WHERE call_id = p_call_id;
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
  VALUES (w.tenant_id, p_call_id, 'reserved', v_chosen, w.queue_id, v_device,
          jsonb_build_object('strategy', q.strategy, 'waited_seconds', round(extract(epoch FROM now() - w.waiting_since), 3)));
  RETURN QUERY SELECT v_chosen, v_device;
END $$;
