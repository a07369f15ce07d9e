-- Core data model: tenants, operators, skills, presence, route points, queues, waiting calls,
-- customers, call records and the call events journal. Constraints make impossible states
-- unstorable; every tenant-owned row carries tenant_id, and references between tenant-owned
-- rows go through (tenant_id, id) pairs so a row can never point into another tenant.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TYPE operator_role AS ENUM ('operator', 'supervisor', 'admin');

-- The operator state machine (calls part); 'reserved' = chosen by the router, phone not yet ringing.
CREATE TYPE presence_state AS ENUM
  ('logged_out', 'ready', 'not_ready', 'reserved', 'ringing', 'talking', 'held', 'wrap_up');

CREATE TYPE queue_strategy AS ENUM ('longest_idle', 'fewest_calls', 'round_robin', 'best_skill', 'sticky');

CREATE TYPE call_direction AS ENUM ('inbound', 'outbound', 'internal');

CREATE TYPE call_disposition AS ENUM
  ('answered', 'abandoned_waiting', 'abandoned_ringing', 'overflowed', 'transferred', 'default_routed',
   'closed', 'failed');

CREATE TABLE tenants (
  tenant_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code       text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]*$'),
  name       text NOT NULL CHECK (name <> ''),
  time_zone  text NOT NULL DEFAULT 'UTC',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
  operator_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     bigint NOT NULL REFERENCES tenants,
  login         text NOT NULL CHECK (login ~ '^[A-Za-z0-9._@-]+$'),
  -- pgcrypto: crypt(password, gen_salt('bf')). Only bcrypt hashes are accepted.
  password_hash text NOT NULL CHECK (password_hash ~ '^\$2[abxy]\$[0-9]{2}\$.{53}$'),
  full_name     text NOT NULL DEFAULT '',
  extension     text CHECK (extension <> ''),  -- his usual phone; the device of a session is in presence
  role          operator_role NOT NULL DEFAULT 'operator',
  active        boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, login),
  UNIQUE (tenant_id, operator_id)
);

CREATE TABLE skills (
  skill_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id bigint NOT NULL REFERENCES tenants,
  name      text NOT NULL CHECK (name <> ''),
  UNIQUE (tenant_id, name),
  UNIQUE (tenant_id, skill_id)
);

CREATE TABLE operator_skills (
  tenant_id   bigint NOT NULL,
  operator_id bigint NOT NULL,
  skill_id    bigint NOT NULL,
  level       smallint NOT NULL CHECK (level BETWEEN 1 AND 10),
  PRIMARY KEY (operator_id, skill_id),
  FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, operator_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, skill_id) ON DELETE CASCADE
);
CREATE INDEX operator_skills_by_skill ON operator_skills (skill_id, level);

CREATE TABLE queues (
  queue_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id              bigint NOT NULL REFERENCES tenants,
  name                   text NOT NULL CHECK (name <> ''),
  strategy               queue_strategy NOT NULL DEFAULT 'longest_idle',
  service_level_seconds  integer NOT NULL DEFAULT 20 CHECK (service_level_seconds > 0),
  max_wait_seconds       integer CHECK (max_wait_seconds > 0),        -- NULL: no limit
  max_waiting_calls      integer CHECK (max_waiting_calls >= 0),      -- NULL: no limit
  overflow_queue_id      bigint,
  overflow_after_seconds integer CHECK (overflow_after_seconds >= 0),
  overflow_ratio         numeric(6, 2) CHECK (overflow_ratio > 0),    -- waiting calls per ready operator
  wrap_up_seconds        integer NOT NULL DEFAULT 10 CHECK (wrap_up_seconds >= 0),
  sticky_days            integer NOT NULL DEFAULT 7 CHECK (sticky_days >= 0),
  closed_destination     text,                                        -- device when closed (voicemail)
  priority               integer NOT NULL DEFAULT 0,
  UNIQUE (tenant_id, name),
  UNIQUE (tenant_id, queue_id),
  FOREIGN KEY (tenant_id, overflow_queue_id) REFERENCES queues (tenant_id, queue_id),
  CHECK (overflow_queue_id IS DISTINCT FROM queue_id),
  CHECK (overflow_queue_id IS NOT NULL OR (overflow_after_seconds IS NULL AND overflow_ratio IS NULL))
);

-- Opening hours in the tenant's time zone; a queue with no rows is open around the clock.
CREATE TABLE queue_opening_hours (
  tenant_id bigint NOT NULL,
  queue_id  bigint NOT NULL,
  iso_dow   smallint NOT NULL CHECK (iso_dow BETWEEN 1 AND 7),  -- 1 = Monday
  opens     time NOT NULL,
  closes    time NOT NULL,
  CHECK (opens < closes),
  PRIMARY KEY (queue_id, iso_dow, opens),
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id) ON DELETE CASCADE
);

CREATE TABLE queue_skills (
  tenant_id bigint NOT NULL,
  queue_id  bigint NOT NULL,
  skill_id  bigint NOT NULL,
  min_level smallint NOT NULL DEFAULT 1 CHECK (min_level BETWEEN 1 AND 10),
  PRIMARY KEY (queue_id, skill_id),
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, skill_id) ON DELETE CASCADE
);

-- A PBX device (route point / VDN / ACD group) that belongs to one tenant.
CREATE TABLE route_points (
  route_point_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id        bigint NOT NULL REFERENCES tenants,
  device           text NOT NULL UNIQUE CHECK (device <> ''),
  name             text NOT NULL DEFAULT '',
  default_queue_id bigint,
  UNIQUE (tenant_id, route_point_id),
  FOREIGN KEY (tenant_id, default_queue_id) REFERENCES queues (tenant_id, queue_id)
);

-- A sample CRM table: what the default screen_pop() shows. Admins may join their own.
CREATE TABLE customers (
  customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   bigint NOT NULL REFERENCES tenants,
  phone       text NOT NULL CHECK (phone ~ '^\+?[0-9]+$'),
  name        text NOT NULL DEFAULT '',
  company     text NOT NULL DEFAULT '',
  tier        text NOT NULL DEFAULT 'standard',
  language    text NOT NULL DEFAULT 'en',
  attributes  jsonb NOT NULL DEFAULT '{}',
  notes       text NOT NULL DEFAULT '',
  UNIQUE (tenant_id, phone),
  UNIQUE (tenant_id, customer_id)
);

-- One call-detail record per call.
CREATE TABLE calls (
  call_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id        bigint NOT NULL REFERENCES tenants,
  pbx_call_id      text NOT NULL,               -- the PBX's id when the call was first seen
  direction        call_direction NOT NULL DEFAULT 'inbound',
  route_point_id   bigint,
  caller           text NOT NULL DEFAULT '',
  dialled          text NOT NULL DEFAULT '',
  ivr_data         jsonb NOT NULL DEFAULT '{}',
  customer_id      bigint,
  queue_id         bigint,                      -- first queue
  final_queue_id   bigint,                      -- queue it was answered from (overflow)
  operator_id      bigint,                      -- first operator who answered
  last_operator_id bigint,                      -- after transfers
  offered_at       timestamptz NOT NULL DEFAULT now(),
  queued_at        timestamptz,
  answered_at      timestamptz,
  ended_at         timestamptz,
  disposition      call_disposition,
  wait_seconds     numeric(10, 3) CHECK (wait_seconds >= 0),
  talk_seconds     numeric(10, 3) CHECK (talk_seconds >= 0),
  hold_seconds     numeric(10, 3) CHECK (hold_seconds >= 0),
  wrap_up_seconds  numeric(10, 3) CHECK (wrap_up_seconds >= 0),
  wrap_up_code     text,                        -- the operator's disposition of the call
  notes            text,
  node             text,
  UNIQUE (tenant_id, call_id),
  FOREIGN KEY (tenant_id, route_point_id) REFERENCES route_points (tenant_id, route_point_id),
  FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, customer_id),
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id),
  FOREIGN KEY (tenant_id, final_queue_id) REFERENCES queues (tenant_id, queue_id),
  FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, operator_id),
  FOREIGN KEY (tenant_id, last_operator_id) REFERENCES operators (tenant_id, operator_id),
  CHECK (queued_at >= offered_at),
  CHECK (answered_at >= offered_at),
  CHECK (ended_at >= offered_at),
  CHECK (ended_at >= answered_at),
  CHECK ((ended_at IS NULL) = (disposition IS NULL)),           -- a finished call says how it ended
  CHECK (disposition IS DISTINCT FROM 'answered' OR answered_at IS NOT NULL),
  CHECK (answered_at IS NULL OR operator_id IS NOT NULL)
);
CREATE INDEX calls_open ON calls (tenant_id) WHERE ended_at IS NULL;
CREATE INDEX calls_by_offered ON calls (tenant_id, offered_at);
CREATE INDEX calls_by_pbx_id ON calls (pbx_call_id) WHERE ended_at IS NULL;
CREATE INDEX calls_by_customer ON calls (tenant_id, customer_id, ended_at) WHERE customer_id IS NOT NULL;

-- Presence: one row per operator, the truth that routing reads (shared by every node).
CREATE TABLE presence (
  operator_id     bigint PRIMARY KEY,
  tenant_id       bigint NOT NULL,
  state           presence_state NOT NULL DEFAULT 'logged_out',
  reason          text,                        -- not-ready reason code
  since           timestamptz NOT NULL DEFAULT now(),
  device          text,                        -- phone of the current session
  current_call_id bigint,
  reserved_until  timestamptz,                 -- a reservation not confirmed by then expires
  last_call_ended timestamptz,
  calls_handled   integer NOT NULL DEFAULT 0 CHECK (calls_handled >= 0),
  node            text,                        -- the Switchboard node holding his desktop
  FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, operator_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, current_call_id) REFERENCES calls (tenant_id, call_id),
  -- an operator who is reserved, ringing, talking or holding has a current call
  CONSTRAINT presence_busy_has_call CHECK
    (state NOT IN ('reserved', 'ringing', 'talking', 'held') OR current_call_id IS NOT NULL),
  -- ready, not ready and logged out operators have no call
  CONSTRAINT presence_idle_has_no_call CHECK
    (state NOT IN ('logged_out', 'ready', 'not_ready') OR current_call_id IS NULL),
  -- a not-ready operator says why; nobody else has a reason
  CONSTRAINT presence_reason_iff_not_ready CHECK ((state = 'not_ready') = (reason IS NOT NULL)),
  -- a logged-in operator has a device; a logged-out one has none
  CONSTRAINT presence_device_iff_logged_in CHECK ((state = 'logged_out') = (device IS NULL)),
  CONSTRAINT presence_reservation_has_deadline CHECK ((state = 'reserved') = (reserved_until IS NOT NULL))
);
-- a device belongs to at most one logged-in operator
CREATE UNIQUE INDEX presence_one_operator_per_device ON presence (device) WHERE device IS NOT NULL;
-- a call rings or talks at one operator at a time (consultations use a second call)
CREATE UNIQUE INDEX presence_one_operator_per_call ON presence (current_call_id) WHERE current_call_id IS NOT NULL;
CREATE INDEX presence_ready ON presence (tenant_id, last_call_ended) WHERE state = 'ready';
CREATE INDEX presence_reserved ON presence (reserved_until) WHERE state = 'reserved';

-- Every operator has exactly one presence row from the moment he exists.
CREATE FUNCTION operators_create_presence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO presence (operator_id, tenant_id) VALUES (NEW.operator_id, NEW.tenant_id);
  RETURN NEW;
END $$;
CREATE TRIGGER operators_create_presence AFTER INSERT ON operators
  FOR EACH ROW EXECUTE FUNCTION operators_create_presence();

-- Calls waiting for an operator (priority, then age).
CREATE TABLE waiting_calls (
  call_id       bigint PRIMARY KEY,
  tenant_id     bigint NOT NULL,
  queue_id      bigint NOT NULL,
  priority      integer NOT NULL DEFAULT 0,
  waiting_since timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, call_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id)
);
CREATE INDEX waiting_calls_order ON waiting_calls (queue_id, priority DESC, waiting_since);

-- Append-only journal of every step of every call.
CREATE TABLE call_events (
  event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   bigint NOT NULL,
  call_id     bigint NOT NULL,
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  kind        text NOT NULL CHECK (kind ~ '^[a-z_]+$'),
  operator_id bigint,
  queue_id    bigint,
  device      text,
  detail      jsonb NOT NULL DEFAULT '{}',
  FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, call_id),
  FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, operator_id),
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id)
);
CREATE INDEX call_events_by_call ON call_events (call_id, event_id);

CREATE FUNCTION call_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'call_events is append-only (% refused)', TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER call_events_append_only BEFORE UPDATE OR DELETE ON call_events
  FOR EACH ROW EXECUTE FUNCTION call_events_append_only();
CREATE TRIGGER call_events_no_truncate BEFORE TRUNCATE ON call_events
  FOR EACH STATEMENT EXECUTE FUNCTION call_events_append_only();

-- Presence changes are announced to every node (LISTEN presence).
CREATE FUNCTION presence_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('presence', json_build_object(
    'operator_id', NEW.operator_id, 'tenant_id', NEW.tenant_id, 'state', NEW.state, 'node', NEW.node)::text);
  RETURN NEW;
END $$;
CREATE TRIGGER presence_notify AFTER UPDATE OF state ON presence
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION presence_notify();

-- A convenience for admins: set or change an operator's password.
CREATE FUNCTION hash_password(password text) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT crypt(password, gen_salt('bf', 8))
$$;

-- Checks a login; returns the operator or nothing.
CREATE FUNCTION check_login(p_tenant_code text, p_login text, p_password text)
RETURNS TABLE (operator_id bigint, tenant_id bigint, role operator_role, full_name text, extension text)
LANGUAGE sql STABLE AS $$
  SELECT o.operator_id, o.tenant_id, o.role, o.full_name, o.extension
    FROM operators o JOIN tenants t USING (tenant_id)
   WHERE t.code = p_tenant_code AND o.login = p_login AND o.active
     AND o.password_hash = crypt(p_password, o.password_hash)
$$;
