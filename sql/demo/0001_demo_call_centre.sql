-- Demo data: one outsourcing centre hosting two client companies. Acme has 20 operators in
-- three queues (sales, support, billing) with two skills (english, spanish); Globex is a second
-- tenant to show isolation. Every demo password is "demo".

INSERT INTO tenants (code, name, time_zone) VALUES
  ('acme', 'Acme Insurance', 'Europe/Berlin'),
  ('globex', 'Globex Utilities', 'Europe/London');

INSERT INTO skills (tenant_id, name)
SELECT t.tenant_id, s.name FROM tenants t CROSS JOIN (VALUES ('english'), ('spanish')) s(name);

INSERT INTO queues (tenant_id, name, strategy, service_level_seconds, max_wait_seconds, wrap_up_seconds)
SELECT tenant_id, q.name, q.strategy::queue_strategy, q.sl, q.max_wait, q.wrap
  FROM tenants t
  CROSS JOIN (VALUES ('sales', 'longest_idle', 20, 300, 5),
                     ('support', 'best_skill', 30, 600, 8),
                     ('billing', 'fewest_calls', 20, 300, 5)) q(name, strategy, sl, max_wait, wrap)
 WHERE t.code = 'acme';
INSERT INTO queues (tenant_id, name) SELECT tenant_id, 'service' FROM tenants WHERE code = 'globex';

-- sales overflows to support after 60 s
UPDATE queues SET overflow_queue_id = (SELECT queue_id FROM queues WHERE name = 'support'),
                  overflow_after_seconds = 60
 WHERE name = 'sales';

-- Office hours Monday to Friday, 08:00-20:00, for billing; sales and support are 24/7.
INSERT INTO queue_opening_hours (tenant_id, queue_id, iso_dow, opens, closes)
SELECT q.tenant_id, q.queue_id, d, '08:00', '20:00' FROM queues q CROSS JOIN generate_series(1, 5) d
 WHERE q.name = 'billing';
UPDATE queues SET closed_destination = '6000' WHERE name = 'billing';

INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level)
SELECT q.tenant_id, q.queue_id, s.skill_id, 3
  FROM queues q JOIN skills s ON s.tenant_id = q.tenant_id AND s.name = 'english';

INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role)
SELECT t.tenant_id, 'op' || lpad(n::text, 2, '0'), hash_password('demo'),
       (ARRAY['Anna', 'Ben', 'Carla', 'David', 'Eva', 'Felix', 'Greta', 'Hugo', 'Ines', 'Jonas',
              'Karin', 'Luis', 'Mia', 'Nico', 'Olga', 'Paul', 'Rosa', 'Sven', 'Tina', 'Uwe'])[n] || ' Operator',
       (2000 + n)::text, 'operator'
  FROM tenants t CROSS JOIN generate_series(1, 20) n WHERE t.code = 'acme';
INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role)
SELECT tenant_id, 'super', hash_password('demo'), 'Sam Supervisor', '2100', 'supervisor' FROM tenants WHERE code = 'acme';
INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role)
SELECT tenant_id, 'op01', hash_password('demo'), 'Gina Globex', '3001', 'operator' FROM tenants WHERE code = 'globex';

-- Everyone speaks English (levels 3-10); every third operator also Spanish.
INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level)
SELECT o.tenant_id, o.operator_id, s.skill_id, 3 + (o.operator_id % 8)
  FROM operators o JOIN skills s ON s.tenant_id = o.tenant_id AND s.name = 'english' WHERE o.role = 'operator';
INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level)
SELECT o.tenant_id, o.operator_id, s.skill_id, 5 + (o.operator_id % 5)
  FROM operators o JOIN skills s ON s.tenant_id = o.tenant_id AND s.name = 'spanish'
 WHERE o.role = 'operator' AND o.operator_id % 3 = 0;

INSERT INTO route_points (tenant_id, device, name, default_queue_id)
SELECT q.tenant_id, rp.device, rp.name, q.queue_id
  FROM (VALUES ('5000', 'Sales hotline', 'sales'), ('5001', 'Support hotline', 'support'),
               ('5002', 'Billing hotline', 'billing')) rp(device, name, queue)
  JOIN queues q ON q.name = rp.queue;
INSERT INTO route_points (tenant_id, device, name, default_queue_id)
SELECT tenant_id, '5100', 'Globex service line', queue_id FROM queues WHERE name = 'service';

-- 500 customers per tenant with phone numbers the PBX simulator's callers use (+4930555xxxx).
INSERT INTO customers (tenant_id, phone, name, company, tier, language, attributes)
SELECT t.tenant_id, '+4930555' || lpad(n::text, 4, '0'),
       (ARRAY['Miller', 'Schmidt', 'Garcia', 'Rossi', 'Novak', 'Dubois', 'Jensen', 'Silva'])[1 + n % 8] || ' ' || n,
       (ARRAY['', 'Contoso GmbH', 'Fabrikam AG', 'Northwind Ltd'])[1 + n % 4],
       CASE WHEN n % 10 = 0 THEN 'vip' WHEN n % 4 = 0 THEN 'gold' ELSE 'standard' END,
       CASE WHEN n % 3 = 0 THEN 'es' ELSE 'en' END,
       jsonb_build_object('contract', 'C-' || (100000 + n), 'open_tickets', n % 3)
  FROM tenants t CROSS JOIN generate_series(1, 500) n;
