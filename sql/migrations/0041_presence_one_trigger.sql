-- One trigger per presence change instead of three (bench_routing, switchboard-bench: a whole
-- call moves presence five times): the history row (0020), the NOTIFY with the whole row (0040)
-- and the ready_skills rows (0014) are kept by one plpgsql call, fired only when one of the
-- columns they follow changes. Same rows, same payload as before.

DROP TRIGGER presence_history_append ON presence;
DROP TRIGGER presence_notify ON presence;
DROP TRIGGER presence_ready_skills ON presence;
DROP FUNCTION presence_history_append();
DROP FUNCTION presence_notify();

CREATE FUNCTION presence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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
  FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.reason IS DISTINCT FROM NEW.reason
        OR OLD.last_call_ended IS DISTINCT FROM NEW.last_call_ended OR OLD.calls_handled <> NEW.calls_handled)
  EXECUTE FUNCTION presence_changed();

-- A new or deleted presence row (an operator created or deleted) still goes through 0014's function.
CREATE TRIGGER presence_ready_skills AFTER INSERT OR DELETE ON presence
  FOR EACH ROW EXECUTE FUNCTION presence_ready_skills();
