-- Ready operators by skill, kept by triggers, so each strategy reads the ready holders of the
-- call's first skill in its own order straight from an index. Walking the global idle order
-- instead grew with the operators: its head fills up with operators no current call needs
-- (bench_routing at 10,000 walked ~1,900 of them per decision).

-- One row per (ready operator, skill he holds), plus skill 0 at level 0 ("anyone") for every
-- ready operator, for calls that need no skill.
CREATE TABLE ready_skills (
  tenant_id       bigint NOT NULL,
  skill_id        bigint NOT NULL,
  operator_id     bigint NOT NULL,
  level           smallint NOT NULL,
  last_call_ended timestamptz,
  calls_handled   integer NOT NULL,
  PRIMARY KEY (tenant_id, skill_id, operator_id)
);
CREATE INDEX ready_skills_idle ON ready_skills (tenant_id, skill_id, last_call_ended NULLS FIRST, operator_id);
CREATE INDEX ready_skills_fewest
  ON ready_skills (tenant_id, skill_id, calls_handled, last_call_ended NULLS FIRST, operator_id);
CREATE INDEX ready_skills_best ON ready_skills (tenant_id, skill_id, level DESC, last_call_ended NULLS FIRST, operator_id);
CREATE INDEX ready_skills_by_operator ON ready_skills (operator_id);

DO $$
BEGIN
  IF to_regprocedure('current_tenant_id()') IS NULL THEN
    RETURN;
  END IF;
  ALTER TABLE ready_skills ENABLE ROW LEVEL SECURITY;
  CREATE POLICY tenant_isolation ON ready_skills USING (tenant_id = current_tenant_id())
    WITH CHECK (tenant_id = current_tenant_id());
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_tenant') THEN
    GRANT SELECT ON ready_skills TO switchboard_tenant;
  END IF;
END $$;

-- The rows of one operator as he is now (none unless ready).
CREATE FUNCTION ready_skills_sync(p_operator_id bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM ready_skills WHERE operator_id = p_operator_id;
  INSERT INTO ready_skills (tenant_id, skill_id, operator_id, level, last_call_ended, calls_handled)
  SELECT p.tenant_id, s.skill_id, p.operator_id, s.level, p.last_call_ended, p.calls_handled
    FROM presence p
    CROSS JOIN LATERAL (SELECT os.skill_id, os.level FROM operator_skills os WHERE os.operator_id = p.operator_id
                        UNION ALL SELECT 0, 0) s
   WHERE p.operator_id = p_operator_id AND p.state = 'ready';
END $$;

CREATE FUNCTION presence_ready_skills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM ready_skills WHERE operator_id = OLD.operator_id;
  ELSIF TG_OP = 'UPDATE' AND OLD.state = 'ready' AND NEW.state = 'ready' THEN
    UPDATE ready_skills SET last_call_ended = NEW.last_call_ended, calls_handled = NEW.calls_handled
     WHERE operator_id = NEW.operator_id;
  ELSIF TG_OP = 'UPDATE' AND OLD.state = 'ready' THEN
    DELETE FROM ready_skills WHERE operator_id = NEW.operator_id;
  ELSIF NEW.state = 'ready' THEN
    PERFORM ready_skills_sync(NEW.operator_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER presence_ready_skills
  AFTER INSERT OR DELETE OR UPDATE OF state, last_call_ended, calls_handled ON presence
  FOR EACH ROW EXECUTE FUNCTION presence_ready_skills();

CREATE FUNCTION operator_skills_ready_skills() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM ready_skills_sync(OLD.operator_id);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM ready_skills_sync(NEW.operator_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER operator_skills_ready_skills AFTER INSERT OR UPDATE OR DELETE ON operator_skills
  FOR EACH ROW EXECUTE FUNCTION operator_skills_ready_skills();

DO $$
BEGIN
  PERFORM ready_skills_sync(p.operator_id) FROM presence p WHERE p.state = 'ready';
END $$;

-- Same contract as in 0013; each strategy now reads ready_skills for the first skill (skill 0 =
-- anyone) in its own index order and checks the other skills inline. The statements differ only
-- in ORDER BY, which must be static for the index to give the order.
CREATE OR REPLACE FUNCTION reserve_operator(p_call_id bigint, p_tenant_id bigint, p_queue queues, p_skill_ids bigint[],
                                            p_levels smallint[], p_until timestamptz, p_sticky bigint)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_skill bigint := coalesce(p_skill_ids[1], 0);
  v_level smallint := coalesce(p_levels[1], 0);
  v_ids bigint[] := coalesce(p_skill_ids[2:], '{}');
  v_levels smallint[] := coalesce(p_levels[2:], '{}');
  v_chosen bigint;
  v_device text;
  v_from bigint := 0;  -- round robin: operators after this id
  v_only bigint;       -- sticky: this operator
BEGIN
  IF p_queue.strategy = 'sticky' THEN
    v_only := p_sticky;
  ELSIF p_queue.strategy = 'round_robin' THEN
    SELECT coalesce(rr.last_operator_id, 0) INTO v_from FROM queue_round_robin rr WHERE rr.queue_id = p_queue.queue_id;
    v_from := coalesce(v_from, 0);
  END IF;
  LOOP
    IF v_only IS NOT NULL OR p_queue.strategy IN ('longest_idle', 'sticky') THEN
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.level >= v_level
           AND (v_only IS NULL OR rs.operator_id = v_only) AND p.state = 'ready'
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
      EXIT WHEN v_chosen IS NOT NULL OR v_only IS NULL;
      v_only := NULL;  -- sticky operator not free: longest idle
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
      EXIT;
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
      EXIT;
    ELSE  -- round robin: after the pointer, then a second pass from the lowest id
      WITH candidate AS (
        SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
         WHERE rs.tenant_id = p_tenant_id AND rs.skill_id = v_skill AND rs.operator_id > v_from
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
    END IF;
  END LOOP;
  IF v_chosen IS NULL THEN
    RETURN;
  END IF;
  IF p_queue.strategy = 'round_robin' THEN
    INSERT INTO queue_round_robin AS rr (queue_id, tenant_id, last_operator_id)
    VALUES (p_queue.queue_id, p_queue.tenant_id, v_chosen)
    ON CONFLICT (queue_id) DO UPDATE SET last_operator_id = excluded.last_operator_id;
  END IF;
  RETURN QUERY SELECT v_chosen, v_device;
END $$;
