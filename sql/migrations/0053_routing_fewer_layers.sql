-- Two layers less work on the hot path, counted in instructions (bench/decision_instructions.sh,
-- docs/benchmarks.md "## Routing"):
-- * presence_changed fires without a WHEN clause and tests the same columns first thing. A
--   trigger's WHEN is read back from its stored node tree and compiled again for every UPDATE
--   statement on presence (~37k instructions each: every reservation and every presence move of a
--   call), where the same test inside the compiled PL/pgSQL function costs next to nothing. An
--   UPDATE of these columns that changes none of them now calls the function, which returns at once.
-- * route_call(c calls), the admin's hook, is by default a SQL function that PostgreSQL inlines
--   into its caller (offer_call) instead of a PL/pgSQL wrapper around route_call_by_rules(c). An
--   admin who has replaced route_call keeps his own: the default is replaced only while its body
--   is still the one migration 0017 created.

DROP TRIGGER presence_changed ON presence;

CREATE OR REPLACE FUNCTION presence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (OLD.state IS DISTINCT FROM NEW.state OR OLD.reason IS DISTINCT FROM NEW.reason
          OR OLD.last_call_ended IS DISTINCT FROM NEW.last_call_ended OR OLD.calls_handled <> NEW.calls_handled) THEN
    RETURN NULL;  -- none of the columns it follows changed (the WHEN clause of 0041)
  END IF;
  IF OLD.state IS DISTINCT FROM NEW.state OR OLD.reason IS DISTINCT FROM NEW.reason THEN
    -- dated by presence.since when the writer set it, else by the clock
    INSERT INTO presence_history (tenant_id, operator_id, state, reason, at)
    VALUES (NEW.tenant_id, NEW.operator_id, NEW.state, NEW.reason,
            CASE WHEN NEW.since IS DISTINCT FROM OLD.since THEN NEW.since ELSE clock_timestamp() END);
  END IF;
  IF OLD.state IS DISTINCT FROM NEW.state THEN
    -- the whole row a desktop or supervisor is shown ('since' as store::load_presence formats it)
    PERFORM pg_notify('presence', json_build_object(
      'operator_id', NEW.operator_id, 'tenant_id', NEW.tenant_id, 'state', NEW.state, 'node', NEW.node,
      'reason', NEW.reason,
      'since', to_char(NEW.since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'device', NEW.device, 'current_call_id', NEW.current_call_id)::text);
  END IF;
  IF OLD.state = 'ready' AND NEW.state = 'ready' THEN
    IF OLD.last_call_ended IS DISTINCT FROM NEW.last_call_ended OR OLD.calls_handled <> NEW.calls_handled THEN
      UPDATE ready_skills SET last_call_ended = NEW.last_call_ended, calls_handled = NEW.calls_handled
       WHERE operator_id = NEW.operator_id;
    END IF;
  ELSIF OLD.state = 'ready' THEN
    DELETE FROM ready_skills WHERE operator_id = NEW.operator_id;
  ELSIF NEW.state = 'ready' THEN
    INSERT INTO ready_skills (tenant_id, skill_id, operator_id, level, last_call_ended, calls_handled)
    SELECT NEW.tenant_id, s.skill_id, NEW.operator_id, s.level, NEW.last_call_ended, NEW.calls_handled
      FROM (SELECT os.skill_id, os.level FROM operator_skills os WHERE os.operator_id = NEW.operator_id
            UNION ALL SELECT 0, 0) s;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER presence_changed AFTER UPDATE OF state, reason, last_call_ended, calls_handled ON presence
  FOR EACH ROW EXECUTE FUNCTION presence_changed();

DO $$
BEGIN
  IF (SELECT p.prosrc FROM pg_proc p WHERE p.oid = 'route_call(calls)'::regprocedure)
     = E'\nBEGIN\n  RETURN route_call_by_rules(c);\nEND ' THEN
    CREATE OR REPLACE FUNCTION route_call(c calls) RETURNS route_target LANGUAGE sql STABLE AS $f$
      SELECT route_call_by_rules(c)
    $f$;
  ELSE
    RAISE NOTICE 'route_call(calls) has been replaced by an administrator: kept as it is';
  END IF;
END $$;
