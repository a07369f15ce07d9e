-- Tenant isolation in the database, not only in C++: row-level security on every tenant-owned
-- table. The server connects as the tables' owner (RLS does not apply to it); reports, admin
-- tools and anything acting for one tenant run as role switchboard_tenant with
--   SET ROLE switchboard_tenant; SET switchboard.tenant_id = '<id>';
-- and then see only that tenant's rows. With no tenant set they see nothing.

DO $$
BEGIN
  CREATE ROLE switchboard_tenant NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;  -- roles are cluster-wide: another database of this cluster created it already
END $$;

CREATE FUNCTION current_tenant_id() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('switchboard.tenant_id', true), '')::bigint
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'operators', 'skills', 'operator_skills', 'queues', 'queue_opening_hours',
                           'queue_skills', 'route_points', 'customers', 'calls', 'presence', 'waiting_calls',
                           'call_events']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                   'WITH CHECK (tenant_id = current_tenant_id())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO switchboard_tenant', t);
  END LOOP;
END $$;

-- Operators' password hashes are not for tenant sessions.
REVOKE SELECT ON operators FROM switchboard_tenant;
GRANT SELECT (operator_id, tenant_id, login, full_name, extension, role, active, created_at) ON operators
  TO switchboard_tenant;
