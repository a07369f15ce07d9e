-- reserve_operator starts no test of further skills for a call that needs one skill (the usual
-- call: a queue's one skill, no rule adding more): each strategy's statement comes in two forms,
-- the one-skill form without the anti-join over the call's other skills. PostgreSQL starts every
-- node of a plan at every execution, a subplan that never finds anything included, so the test
-- cost a one-skill decision ~60k instructions (bench/decision_instructions.sh: 2,744,571 ->
-- 2,682,281 RETURN NEXT instead of RETURN QUERY SELECT, -2.3 %; docs/benchmarks.md "## Routing"). A call that needs
-- several skills runs the same statements as before. reserve_operator is internal (pick_operator,
-- which administrators may replace, calls it), so it is replaced whatever its body.
CREATE OR REPLACE FUNCTION reserve_operator(p_call_id bigint, p_tenant_id bigint, p_queue queues, p_skill_ids bigint[], p_levels smallint[], p_until timestamp with time zone, p_sticky bigint)
 RETURNS TABLE(operator_id bigint, device text)
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
    IF cardinality(v_ids) = 0 THEN
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.operator_id = p_sticky
           AND rs.level >= v_level AND p.state = 'ready'
         FOR UPDATE OF p SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    ELSE
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
    END IF;
    IF v_chosen IS NOT NULL THEN
      operator_id := v_chosen;
      device := v_device;
      RETURN NEXT;
      RETURN;
    END IF;
    -- the sticky operator is not free: longest idle
  END IF;
  IF p_queue.strategy IN ('longest_idle', 'sticky') THEN
    IF cardinality(v_ids) = 0 THEN
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         ORDER BY rs.last_call_ended NULLS FIRST, rs.operator_id
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    ELSE
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
    END IF;
  ELSIF p_queue.strategy = 'fewest_calls' THEN
    IF cardinality(v_ids) = 0 THEN
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         ORDER BY rs.calls_handled, rs.last_call_ended NULLS FIRST, rs.operator_id
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    ELSE
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
    END IF;
  ELSIF p_queue.strategy = 'best_skill' THEN
    IF cardinality(v_ids) = 0 THEN
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level AND p.state = 'ready'
         ORDER BY rs.level DESC, rs.last_call_ended NULLS FIRST, rs.operator_id
         LIMIT 1
         FOR UPDATE OF p SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    ELSE
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
    END IF;
  ELSE  -- round robin: after the queue's last pick, then a second pass from the lowest id
    SELECT rr.last_operator_id INTO v_from FROM queue_round_robin rr WHERE rr.queue_id = p_queue.queue_id;
    v_from := coalesce(v_from, 0);
    LOOP
      IF cardinality(v_ids) = 0 THEN
        WITH candidate AS (
          SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
           WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.operator_id > v_from
             AND p.operator_id > v_from  -- a generic plan may merge-join presence in id order: from the pointer
             AND rs.level >= v_level AND p.state = 'ready'
           ORDER BY rs.operator_id
           LIMIT 1
           FOR UPDATE OF p SKIP LOCKED)
        UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = p_until, since = now()
          FROM candidate c WHERE p.operator_id = c.operator_id
        RETURNING p.operator_id, p.device INTO v_chosen, v_device;
      ELSE
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
      END IF;
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
    operator_id := v_chosen;
    device := v_device;
    RETURN NEXT;
  END IF;
END $function$;
