-- The presence NOTIFY carries the whole row a desktop or supervisor is shown (state, reason,
-- since, device, current call), so the nodes apply it as it comes instead of reading the row
-- back: that read was about seven round trips per call under load (switchboard-bench).
-- 'since' has the format of store::load_presence (ISO 8601, UTC, milliseconds).
CREATE OR REPLACE FUNCTION presence_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('presence', json_build_object(
    'operator_id', NEW.operator_id, 'tenant_id', NEW.tenant_id, 'state', NEW.state, 'node', NEW.node,
    'reason', NEW.reason,
    'since', to_char(NEW.since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'device', NEW.device, 'current_call_id', NEW.current_call_id)::text);
  RETURN NEW;
END $$;
