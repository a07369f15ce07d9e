-- Routing engine in SQL, so admins read and change it live: rules as data (routing_rules), rules
-- as code (route_call, pick_operator, pick_call, screen_pop: CREATE OR REPLACE them), queue
-- strategies, skill escalation, overflow, opening hours, expected wait, and the atomic operator
-- reservation that keeps two calls (or two nodes) from ever getting the same operator.

-- The calendar clock of opening hours and rule time windows. Unset it is now(); an admin may
-- dry-run "what happens on Sunday at 23:00" with SET switchboard.clock = '...'.
CREATE FUNCTION routing_now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('switchboard.clock', true), '')::timestamptz, now())
$$;

-- Where callers of a queue wait (announcement / music device) and the handle time assumed
-- before the queue has a history.
ALTER TABLE queues
  ADD COLUMN wait_destination text CHECK (wait_destination <> ''),
  ADD COLUMN default_handle_seconds integer NOT NULL DEFAULT 180 CHECK (default_handle_seconds > 0);

-- A waiting call remembers what it needs: the skills of its queue and rule (by level, highest
-- first), the queue it entered last (for that queue's timers) and the overflow queues it is
-- offered to as well. waiting_since is the caller's place and never changes.
ALTER TABLE waiting_calls
  ADD COLUMN queue_since timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN skill_ids bigint[] NOT NULL DEFAULT '{}',
  ADD COLUMN skill_levels smallint[] NOT NULL DEFAULT '{}',
  ADD COLUMN also_queue_ids bigint[] NOT NULL DEFAULT '{}',
  ADD COLUMN node text,
  ADD CONSTRAINT waiting_calls_skills_paired CHECK (cardinality(skill_ids) = cardinality(skill_levels));
CREATE INDEX waiting_calls_by_tenant ON waiting_calls (tenant_id, priority DESC, waiting_since, call_id);

-- Indexes for every strategy's order among ready operators: the pick reads a few index entries,
-- never all operators.
CREATE INDEX presence_ready_idle ON presence (tenant_id, last_call_ended NULLS FIRST, operator_id)
  WHERE state = 'ready';
CREATE INDEX presence_ready_fewest ON presence (tenant_id, calls_handled, last_call_ended NULLS FIRST, operator_id)
  WHERE state = 'ready';
CREATE INDEX presence_ready_by_id ON presence (tenant_id, operator_id) WHERE state = 'ready';
-- Recent handle times of a queue (expected wait).
CREATE INDEX calls_handled_by_queue ON calls (final_queue_id, ended_at DESC)
  WHERE answered_at IS NOT NULL AND ended_at IS NOT NULL;

-- Rules as data: the first enabled rule (by rule_order, then rule_id) whose every non-NULL
-- condition matches decides the target. No match: the route point's default queue.
CREATE TABLE routing_rules (
  rule_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id      bigint NOT NULL REFERENCES tenants,
  rule_order     integer NOT NULL,
  name           text NOT NULL DEFAULT '',
  enabled        boolean NOT NULL DEFAULT true,
  route_point_id bigint,                                          -- NULL: any route point
  dialled        text,                                            -- exact dialled number
  caller_prefix  text,                                            -- caller number starts with
  ivr_match      jsonb CHECK (jsonb_typeof(ivr_match) = 'object'),      -- ivr_data @> ivr_match
  customer_match jsonb CHECK (jsonb_typeof(customer_match) = 'object'), -- customers row @> this
  iso_dows       smallint[] CHECK (iso_dows <@ '{1,2,3,4,5,6,7}'), -- tenant-local day, 1 = Monday
  time_from      time,                                            -- tenant-local window [from, to)
  time_to        time,                                            -- from > to spans midnight
  queue_id       bigint,
  destination    text CHECK (destination <> ''),                  -- a device instead of a queue
  priority       integer NOT NULL DEFAULT 0,
  UNIQUE (tenant_id, rule_id),
  CHECK ((queue_id IS NULL) <> (destination IS NULL)),
  CHECK ((time_from IS NULL) = (time_to IS NULL)),
  FOREIGN KEY (tenant_id, route_point_id) REFERENCES route_points (tenant_id, route_point_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id) ON DELETE CASCADE
);
CREATE INDEX routing_rules_order ON routing_rules (tenant_id, rule_order, rule_id) WHERE enabled;

-- Skills a rule requires on top of its queue's skills.
CREATE TABLE routing_rule_skills (
  tenant_id bigint NOT NULL,
  rule_id   bigint NOT NULL,
  skill_id  bigint NOT NULL,
  min_level smallint NOT NULL DEFAULT 1 CHECK (min_level BETWEEN 1 AND 10),
  PRIMARY KEY (rule_id, skill_id),
  FOREIGN KEY (tenant_id, rule_id) REFERENCES routing_rules (tenant_id, rule_id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, skill_id) ON DELETE CASCADE
);

-- Escalation: once a call has waited after_seconds in the queue, its required levels drop by
-- level_drop (the latest step reached counts) and the step's extra skills qualify as well.
CREATE TABLE queue_escalation_steps (
  tenant_id     bigint NOT NULL,
  queue_id      bigint NOT NULL,
  after_seconds integer NOT NULL CHECK (after_seconds > 0),
  level_drop    smallint NOT NULL DEFAULT 0 CHECK (level_drop BETWEEN 0 AND 9),
  PRIMARY KEY (queue_id, after_seconds),
  FOREIGN KEY (tenant_id, queue_id) REFERENCES queues (tenant_id, queue_id) ON DELETE CASCADE
);

-- An operator with one of these skills (at min_level) may take the call from that step on.
CREATE TABLE queue_escalation_skills (
  tenant_id     bigint NOT NULL,
  queue_id      bigint NOT NULL,
  after_seconds integer NOT NULL,
  skill_id      bigint NOT NULL,
  min_level     smallint NOT NULL DEFAULT 1 CHECK (min_level BETWEEN 1 AND 10),
  PRIMARY KEY (queue_id, after_seconds, skill_id),
  FOREIGN KEY (queue_id, after_seconds) REFERENCES queue_escalation_steps (queue_id, after_seconds) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, skill_id) REFERENCES skills (tenant_id, skill_id) ON DELETE CASCADE
);

-- The round-robin pointer of each queue: the operator who got its last call.
CREATE TABLE queue_round_robin (
  queue_id         bigint PRIMARY KEY REFERENCES queues ON DELETE CASCADE,
  tenant_id        bigint NOT NULL REFERENCES tenants,
  last_operator_id bigint NOT NULL
);

-- Tenant isolation as for the core tables, when the tenant-isolation migration is installed.
DO $$
DECLARE
  t text;
BEGIN
  IF to_regprocedure('current_tenant_id()') IS NULL THEN
    RETURN;
  END IF;
  FOREACH t IN ARRAY ARRAY['routing_rules', 'routing_rule_skills', 'queue_escalation_steps', 'queue_escalation_skills',
                           'queue_round_robin']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                   'WITH CHECK (tenant_id = current_tenant_id())', t);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_tenant') THEN
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO switchboard_tenant', t);
    END IF;
  END LOOP;
END $$;

-- What route_call returns: a queue (with priority and extra skills by name, e.g.
-- '{"spanish": 5}'), or a destination device; all NULL (or a NULL row) = the PBX's default.
CREATE TYPE route_target AS (
  queue_id    bigint,
  priority    integer,
  skills      jsonb,
  destination text,
  rule_id     bigint,
  note        text
);

-- What the server gets back for a call: kind is 'operator' (reserved: ring device), 'queued'
-- (wait at destination, if any), 'destination' (a rule's device), 'closed' (the queue's closed
-- destination, or none), 'default' (route end: the PBX decides) or 'gone' (no longer waiting).
CREATE TYPE route_decision AS (
  call_id               bigint,
  kind                  text,
  operator_id           bigint,
  device                text,
  queue_id              bigint,
  queue_position        integer,
  expected_wait_seconds integer,
  destination           text,
  reason                text
);

-- True when the queue is open at p_at in its tenant's time zone (no hours: always open).
CREATE FUNCTION queue_is_open(p_queue_id bigint, p_at timestamptz) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT NOT EXISTS (SELECT 1 FROM queue_opening_hours h WHERE h.queue_id = p_queue_id)
      OR EXISTS (SELECT 1
                   FROM queue_opening_hours h JOIN tenants t ON t.tenant_id = h.tenant_id
                  WHERE h.queue_id = p_queue_id
                    AND h.iso_dow = extract(isodow FROM p_at AT TIME ZONE t.time_zone)
                    AND (p_at AT TIME ZONE t.time_zone)::time >= h.opens
                    AND (p_at AT TIME ZONE t.time_zone)::time < h.closes)
$$;

-- Operators working a queue: logged in, not in a not-ready pause, holding its skills. Driven
-- from the skill index, so it costs the skill's holders, not every operator.
CREATE FUNCTION queue_staffing(p_queue_id bigint) RETURNS integer LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_tenant bigint;
  v_skills integer;
  v_count integer;
BEGIN
  SELECT q.tenant_id, (SELECT count(*) FROM queue_skills qs WHERE qs.queue_id = q.queue_id)
    INTO v_tenant, v_skills FROM queues q WHERE q.queue_id = p_queue_id;
  IF v_skills = 0 THEN
    SELECT count(*) INTO v_count FROM presence p
     WHERE p.tenant_id = v_tenant AND p.state NOT IN ('logged_out', 'not_ready');
  ELSE
    SELECT count(*) INTO v_count
      FROM (SELECT os.operator_id
              FROM queue_skills qs
              JOIN operator_skills os ON os.skill_id = qs.skill_id AND os.level >= qs.min_level
             WHERE qs.queue_id = p_queue_id
             GROUP BY os.operator_id HAVING count(*) = v_skills) m
      JOIN presence p ON p.operator_id = m.operator_id
     WHERE p.state NOT IN ('logged_out', 'not_ready');
  END IF;
  RETURN v_count;
END $$;

-- Expected wait of the caller at p_position: recent handle time (talk + wrap-up of the last
-- 50 calls answered from the queue, or its default) times position over staffing. NULL when
-- nobody staffs the queue (the wait has no bound to announce).
CREATE FUNCTION expected_wait_seconds(p_queue_id bigint, p_position integer) RETURNS integer
LANGUAGE sql STABLE AS $$
  WITH recent AS (
    SELECT extract(epoch FROM c.ended_at - c.answered_at) + coalesce(c.wrap_up_seconds, 0) AS handle
      FROM calls c
     WHERE c.final_queue_id = p_queue_id AND c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL
     ORDER BY c.ended_at DESC
     LIMIT 50),
  staff AS (SELECT queue_staffing(p_queue_id) AS n)
  SELECT CASE WHEN staff.n = 0 THEN NULL
              ELSE ceil(coalesce((SELECT avg(handle) FROM recent), q.default_handle_seconds) * p_position / staff.n)::integer
         END
    FROM queues q, staff
   WHERE q.queue_id = p_queue_id
$$;

-- The skill alternatives that qualify an operator for a waiting call, now: alternative 0 is
-- the call's own skills with the escalation level drop; 1000 + n each escalation extra skill;
-- 2000 + n each overflow queue's skills. A NULL skill means "anyone of the tenant".
CREATE FUNCTION call_requirements(p_call_id bigint)
RETURNS TABLE (alt integer, skill_id bigint, min_level smallint) LANGUAGE sql STABLE AS $$
  WITH w AS (SELECT wc.*, extract(epoch FROM now() - wc.queue_since) AS waited
               FROM waiting_calls wc WHERE wc.call_id = p_call_id),
  reached AS (SELECT s.after_seconds, s.level_drop
                FROM w JOIN queue_escalation_steps s ON s.queue_id = w.queue_id AND s.after_seconds <= w.waited),
  level_drop AS (SELECT coalesce((SELECT r.level_drop FROM reached r ORDER BY r.after_seconds DESC LIMIT 1), 0) AS d)
  SELECT 0, r.skill_id, greatest(1, r.min_level - (SELECT d FROM level_drop))::smallint
    FROM w, unnest(w.skill_ids, w.skill_levels) AS r(skill_id, min_level)
  UNION ALL
  SELECT 0, NULL, NULL FROM w WHERE cardinality(w.skill_ids) = 0
  UNION ALL
  SELECT 1000 + (row_number() OVER ())::integer, es.skill_id, es.min_level
    FROM w JOIN queue_escalation_skills es ON es.queue_id = w.queue_id AND es.after_seconds <= w.waited
  UNION ALL
  SELECT 2000 + o.n::integer, qs.skill_id, qs.min_level
    FROM w, unnest(w.also_queue_ids) WITH ORDINALITY AS o(queue_id, n)
    LEFT JOIN queue_skills qs ON qs.queue_id = o.queue_id
$$;

-- True when the operator meets every skill of at least one alternative (see call_requirements).
CREATE FUNCTION operator_qualifies(p_operator_id bigint, p_alts integer[], p_skill_ids bigint[], p_levels smallint[])
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1
      FROM unnest(p_alts, p_skill_ids, p_levels) AS r(alt, skill_id, min_level)
      LEFT JOIN operator_skills os
        ON os.operator_id = p_operator_id AND os.skill_id = r.skill_id AND os.level >= r.min_level
     GROUP BY r.alt
    HAVING bool_and(r.skill_id IS NULL OR os.operator_id IS NOT NULL))
$$;

-- True when the operator may take this waiting call now.
CREATE FUNCTION call_accepts_operator(p_call_id bigint, p_operator_id bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT operator_qualifies(p_operator_id, array_agg(r.alt), array_agg(r.skill_id), array_agg(r.min_level))
    FROM call_requirements(p_call_id) r
$$;

-- Rules as data: the first matching routing_rules row, else the route point's default queue.
CREATE FUNCTION route_call_by_rules(p_call_id bigint) RETURNS route_target LANGUAGE plpgsql STABLE AS $$
DECLARE
  c calls;
  v_customer jsonb;
  v_local timestamp;
  r routing_rules;
  t route_target;
BEGIN
  SELECT * INTO c FROM calls WHERE call_id = p_call_id;
  SELECT to_jsonb(cu) INTO v_customer FROM customers cu WHERE cu.customer_id = c.customer_id;
  SELECT routing_now() AT TIME ZONE tz.time_zone INTO v_local FROM tenants tz WHERE tz.tenant_id = c.tenant_id;
  SELECT * INTO r
    FROM routing_rules rr
   WHERE rr.tenant_id = c.tenant_id AND rr.enabled
     AND (rr.route_point_id IS NULL OR rr.route_point_id = c.route_point_id)
     AND (rr.dialled IS NULL OR rr.dialled = c.dialled)
     AND (rr.caller_prefix IS NULL OR starts_with(c.caller, rr.caller_prefix))
     AND (rr.ivr_match IS NULL OR c.ivr_data @> rr.ivr_match)
     AND (rr.customer_match IS NULL OR coalesce(v_customer @> rr.customer_match, false))
     AND (rr.iso_dows IS NULL OR extract(isodow FROM v_local)::smallint = ANY (rr.iso_dows))
     AND (rr.time_from IS NULL
          OR (rr.time_from <= rr.time_to AND v_local::time >= rr.time_from AND v_local::time < rr.time_to)
          OR (rr.time_from > rr.time_to AND (v_local::time >= rr.time_from OR v_local::time < rr.time_to)))
   ORDER BY rr.rule_order, rr.rule_id
   LIMIT 1;
  IF FOUND THEN
    t.queue_id := r.queue_id;
    t.destination := r.destination;
    t.priority := r.priority;
    t.rule_id := r.rule_id;
    t.note := 'rule ' || r.rule_id || CASE WHEN r.name <> '' THEN ' (' || r.name || ')' ELSE '' END;
    SELECT coalesce(jsonb_object_agg(s.name, rs.min_level), '{}') INTO t.skills
      FROM routing_rule_skills rs JOIN skills s ON s.skill_id = rs.skill_id
     WHERE rs.rule_id = r.rule_id;
    RETURN t;
  END IF;
  SELECT rp.default_queue_id INTO t.queue_id FROM route_points rp WHERE rp.route_point_id = c.route_point_id;
  t.priority := 0;
  t.skills := '{}';
  t.note := CASE WHEN t.queue_id IS NULL THEN 'no rule matched and the route point has no default queue'
                 ELSE 'default queue of the route point' END;
  RETURN t;
END $$;

-- Rules as code: an admin may CREATE OR REPLACE this with his own logic (see docs/routing.md).
-- It reads the calls row (caller, dialled, ivr_data, customer_id, route_point_id) and says where
-- the call goes. The default applies the routing_rules table.
CREATE FUNCTION route_call(p_call_id bigint) RETURNS route_target LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN route_call_by_rules(p_call_id);
END $$;

-- Reserves the best ready operator for a waiting call by its queue's strategy, or returns no
-- row. Each strategy's choice and reservation is one statement (FOR UPDATE SKIP LOCKED +
-- UPDATE ... RETURNING), so two transactions never reserve the same operator. Ties end on
-- operator_id. An admin may CREATE OR REPLACE it (same signature).
CREATE FUNCTION pick_operator(p_call_id bigint, p_reserve_seconds integer DEFAULT 10)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  w waiting_calls;
  q queues;
  v_alts integer[];
  v_ids bigint[];
  v_levels smallint[];
  v_until timestamptz := now() + make_interval(secs => p_reserve_seconds);
  v_chosen bigint;
  v_device text;
  v_sticky bigint;
  v_last bigint;
BEGIN
  SELECT * INTO w FROM waiting_calls wc WHERE wc.call_id = p_call_id FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT * INTO q FROM queues WHERE queue_id = w.queue_id;
  SELECT array_agg(r.alt), array_agg(r.skill_id), array_agg(r.min_level) INTO v_alts, v_ids, v_levels
    FROM call_requirements(p_call_id) r;

  IF q.strategy = 'sticky' THEN
    SELECT coalesce(prev.last_operator_id, prev.operator_id) INTO v_sticky
      FROM calls me JOIN calls prev ON prev.tenant_id = me.tenant_id AND prev.customer_id = me.customer_id
     WHERE me.call_id = p_call_id AND prev.call_id <> me.call_id AND prev.answered_at IS NOT NULL
       AND prev.ended_at > now() - make_interval(days => q.sticky_days)
     ORDER BY prev.ended_at DESC
     LIMIT 1;
    IF v_sticky IS NOT NULL THEN
      WITH candidate AS (
        SELECT p.operator_id FROM presence p
         WHERE p.operator_id = v_sticky AND p.tenant_id = w.tenant_id AND p.state = 'ready'
           AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
         FOR UPDATE SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    END IF;
  ELSIF q.strategy = 'best_skill' AND cardinality(w.skill_ids) > 0 THEN
    -- ranked by level in the call's first (highest-level) skill, then longest idle
    WITH candidate AS (
      SELECT p.operator_id FROM operator_skills os JOIN presence p ON p.operator_id = os.operator_id
       WHERE os.skill_id = w.skill_ids[1] AND p.tenant_id = w.tenant_id AND p.state = 'ready'
         AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
       ORDER BY os.level DESC, p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE OF p SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF q.strategy = 'fewest_calls' THEN
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.tenant_id = w.tenant_id AND p.state = 'ready'
         AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
       ORDER BY p.calls_handled, p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  ELSIF q.strategy = 'round_robin' THEN
    -- the next operator after the one who got the queue's last call, wrapping around
    SELECT rr.last_operator_id INTO v_last FROM queue_round_robin rr WHERE rr.queue_id = q.queue_id;
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.tenant_id = w.tenant_id AND p.state = 'ready' AND p.operator_id > coalesce(v_last, 0)
         AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
       ORDER BY p.operator_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    IF v_chosen IS NULL AND v_last IS NOT NULL THEN
      WITH candidate AS (
        SELECT p.operator_id FROM presence p
         WHERE p.tenant_id = w.tenant_id AND p.state = 'ready' AND p.operator_id <= v_last
           AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
         ORDER BY p.operator_id
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
        FROM candidate c WHERE p.operator_id = c.operator_id
      RETURNING p.operator_id, p.device INTO v_chosen, v_device;
    END IF;
    IF v_chosen IS NOT NULL THEN
      INSERT INTO queue_round_robin AS rr (queue_id, tenant_id, last_operator_id) VALUES (q.queue_id, q.tenant_id, v_chosen)
      ON CONFLICT (queue_id) DO UPDATE SET last_operator_id = excluded.last_operator_id;
    END IF;
  END IF;

  -- longest idle: the strategy itself, and the fallback of sticky and best skill
  IF v_chosen IS NULL AND q.strategy <> 'fewest_calls' AND q.strategy <> 'round_robin' THEN
    WITH candidate AS (
      SELECT p.operator_id FROM presence p
       WHERE p.tenant_id = w.tenant_id AND p.state = 'ready'
         AND operator_qualifies(p.operator_id, v_alts, v_ids, v_levels)
       ORDER BY p.last_call_ended NULLS FIRST, p.operator_id
       LIMIT 1
       FOR UPDATE SKIP LOCKED)
    UPDATE presence p SET state = 'reserved', current_call_id = p_call_id, reserved_until = v_until, since = now()
      FROM candidate c WHERE p.operator_id = c.operator_id
    RETURNING p.operator_id, p.device INTO v_chosen, v_device;
  END IF;

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

-- Operator-offered path: an operator who became ready takes the best waiting call he may
-- serve among all queues (priority, then age, then call_id), atomically: the call leaves the
-- waiting list and the operator is reserved in one statement. An admin may CREATE OR REPLACE it.
CREATE FUNCTION pick_call(p_operator_id bigint, p_reserve_seconds integer DEFAULT 10)
RETURNS TABLE (call_id bigint, queue_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  me presence;
  v_call bigint;
  v_queue bigint;
  v_device text;
  v_since timestamptz;
BEGIN
  SELECT * INTO me FROM presence p WHERE p.operator_id = p_operator_id AND p.state = 'ready' FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  WITH chosen AS (
    SELECT wc.call_id FROM waiting_calls wc
     WHERE wc.tenant_id = me.tenant_id AND call_accepts_operator(wc.call_id, p_operator_id)
     ORDER BY wc.priority DESC, wc.waiting_since, wc.call_id
     LIMIT 1
     FOR UPDATE SKIP LOCKED),
  taken AS (
    DELETE FROM waiting_calls wc USING chosen c WHERE wc.call_id = c.call_id
    RETURNING wc.call_id, wc.queue_id, wc.waiting_since)
  UPDATE presence p
     SET state = 'reserved', current_call_id = t.call_id, since = now(),
         reserved_until = now() + make_interval(secs => p_reserve_seconds)
    FROM taken t
   WHERE p.operator_id = p_operator_id
  RETURNING t.call_id, t.queue_id, p.device, t.waiting_since INTO v_call, v_queue, v_device, v_since;
  IF v_call IS NULL THEN
    RETURN;
  END IF;
  UPDATE calls c SET final_queue_id = v_queue WHERE c.call_id = v_call;
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
  VALUES (me.tenant_id, v_call, 'reserved', p_operator_id, v_queue, v_device,
          jsonb_build_object('strategy', 'operator_ready', 'waited_seconds', round(extract(epoch FROM now() - v_since), 3)));
  RETURN QUERY SELECT v_call, v_queue, v_device;
END $$;

-- The screen pop for a call: the customers row of the caller's number in the call's tenant,
-- as jsonb (NULL when unknown). An admin may CREATE OR REPLACE it to join his own tables.
CREATE FUNCTION screen_pop(p_call_id bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT to_jsonb(cu) FROM calls c JOIN customers cu ON cu.tenant_id = c.tenant_id AND cu.phone = c.caller
   WHERE c.call_id = p_call_id
$$;

-- A decision row (internal helper of the functions below).
CREATE FUNCTION routing_decision(p_call_id bigint, p_kind text, p_reason text, p_queue_id bigint DEFAULT NULL,
                                 p_destination text DEFAULT NULL, p_operator_id bigint DEFAULT NULL,
                                 p_device text DEFAULT NULL, p_position integer DEFAULT NULL,
                                 p_expected_wait integer DEFAULT NULL)
RETURNS route_decision LANGUAGE sql IMMUTABLE AS $$
  SELECT ROW(p_call_id, p_kind, p_operator_id, p_device, p_queue_id, p_position, p_expected_wait, p_destination,
             p_reason)::route_decision
$$;

-- The call leaves the queues for the queue's closed destination (or the PBX default).
CREATE FUNCTION routing_close(p_call_id bigint, p_queue queues, p_reason text) RETURNS route_decision
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM waiting_calls WHERE call_id = p_call_id;
  INSERT INTO call_events (tenant_id, call_id, kind, queue_id, device, detail)
  VALUES (p_queue.tenant_id, p_call_id, 'closed', p_queue.queue_id, p_queue.closed_destination,
          jsonb_build_object('reason', p_reason));
  RETURN routing_decision(p_call_id, 'closed', p_reason, p_queue.queue_id, p_queue.closed_destination);
END $$;

-- Puts a call into a queue (or moves it there, keeping its place by age) and decides: closed,
-- an operator now, the overflow queue when this one is full, or waiting with position and
-- expected wait. p_depth stops overflow loops.
CREATE FUNCTION routing_enter_queue(p_call_id bigint, p_queue_id bigint, p_priority integer, p_skill_ids bigint[],
                                    p_skill_levels smallint[], p_node text, p_reserve_seconds integer,
                                    p_depth integer, p_reason text)
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
  INSERT INTO waiting_calls AS wc (call_id, tenant_id, queue_id, priority, queue_since, skill_ids, skill_levels, node)
  VALUES (p_call_id, v_tenant, q.queue_id, p_priority + q.priority, now(), v_ids, v_levels, p_node)
  ON CONFLICT (call_id) DO UPDATE
    SET queue_id = excluded.queue_id, priority = excluded.priority, queue_since = excluded.queue_since,
        skill_ids = excluded.skill_ids, skill_levels = excluded.skill_levels, also_queue_ids = '{}';
  UPDATE calls c SET queue_id = coalesce(c.queue_id, q.queue_id), queued_at = coalesce(c.queued_at, now())
   WHERE c.call_id = p_call_id;
  IF q.overflow_queue_id IS NOT NULL AND q.overflow_after_seconds = 0 THEN
    UPDATE waiting_calls SET also_queue_ids = ARRAY[q.overflow_queue_id] WHERE call_id = p_call_id;
  END IF;
  SELECT * INTO v_op FROM pick_operator(p_call_id, p_reserve_seconds);
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

-- A call still waiting in queue q: offer it to the overflow queue as well once its time or the
-- ratio says so (and try again), else report its position and expected wait.
CREATE FUNCTION routing_waiting(p_call_id bigint, q queues, p_reserve_seconds integer, p_reason text)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  w waiting_calls;
  v_staff integer;
  v_waiting integer;
  v_why text;
  v_op record;
  v_position integer;
BEGIN
  SELECT * INTO w FROM waiting_calls wc WHERE wc.call_id = p_call_id;
  IF q.overflow_queue_id IS NOT NULL AND NOT q.overflow_queue_id = ANY (w.also_queue_ids) THEN
    IF q.overflow_after_seconds IS NOT NULL AND now() - w.queue_since >= make_interval(secs => q.overflow_after_seconds) THEN
      v_why := 'overflow_after_seconds';
    ELSIF q.overflow_ratio IS NOT NULL THEN
      v_staff := queue_staffing(q.queue_id);
      SELECT count(*) INTO v_waiting FROM waiting_calls wc WHERE wc.queue_id = q.queue_id;
      IF v_staff = 0 OR v_waiting::numeric / v_staff > q.overflow_ratio THEN
        v_why := 'overflow_ratio';
      END IF;
    END IF;
    IF v_why IS NOT NULL THEN
      UPDATE waiting_calls SET also_queue_ids = also_queue_ids || q.overflow_queue_id WHERE call_id = p_call_id;
      INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
      VALUES (q.tenant_id, p_call_id, 'overflowed', q.queue_id,
              jsonb_build_object('also_queue_id', q.overflow_queue_id, 'reason', v_why));
      p_reason := p_reason || '; also offered to overflow queue (' || v_why || ')';
      SELECT * INTO v_op FROM pick_operator(p_call_id, p_reserve_seconds);
      IF v_op.operator_id IS NOT NULL THEN
        RETURN routing_decision(p_call_id, 'operator', p_reason, q.queue_id, NULL, v_op.operator_id, v_op.device);
      END IF;
    END IF;
  END IF;
  SELECT 1 + count(*) INTO v_position FROM waiting_calls wc
   WHERE wc.queue_id = q.queue_id
     AND (wc.priority, -extract(epoch FROM wc.waiting_since), -wc.call_id)
       > (w.priority, -extract(epoch FROM w.waiting_since), -w.call_id);
  RETURN routing_decision(p_call_id, 'queued', p_reason, q.queue_id, q.wait_destination, NULL, NULL, v_position,
                          expected_wait_seconds(q.queue_id, v_position));
END $$;

-- Turns route_call's answer into a decision for a new call.
CREATE FUNCTION routing_apply(p_call_id bigint, t route_target, p_node text, p_reserve_seconds integer)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  v_tenant bigint;
  v_unknown text;
  v_ids bigint[];
  v_levels smallint[];
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
  -- a skill name the tenant does not have is an admin's typo: fail loudly (the PBX gets the fallback)
  SELECT k.key INTO v_unknown FROM jsonb_each_text(coalesce(t.skills, '{}')) k
   WHERE NOT EXISTS (SELECT 1 FROM skills s WHERE s.tenant_id = v_tenant AND s.name = k.key)
   LIMIT 1;
  IF v_unknown IS NOT NULL THEN
    RAISE EXCEPTION 'route_call asked for unknown skill "%"', v_unknown;
  END IF;
  SELECT coalesce(array_agg(s.skill_id), '{}'), coalesce(array_agg(k.value::smallint), '{}') INTO v_ids, v_levels
    FROM jsonb_each_text(coalesce(t.skills, '{}')) k JOIN skills s ON s.tenant_id = v_tenant AND s.name = k.key;
  RETURN routing_enter_queue(p_call_id, t.queue_id, coalesce(t.priority, 0), v_ids, v_levels, p_node,
                             p_reserve_seconds, 0, coalesce(t.note, 'route_call chose queue ' || t.queue_id));
END $$;

-- One round trip per offered call: the calls row, the 'offered' event, route_call's decision
-- and, when an operator is free, his reservation.
CREATE FUNCTION offer_call(p_route_point text, p_pbx_call_id text, p_caller text, p_dialled text,
                           p_ivr_data jsonb DEFAULT '{}', p_node text DEFAULT NULL, p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  rp route_points;
  v_customer bigint;
  v_call bigint;
BEGIN
  SELECT * INTO rp FROM route_points WHERE device = p_route_point;
  IF NOT FOUND THEN
    RETURN routing_decision(NULL, 'default', 'unknown route point ' || p_route_point);
  END IF;
  SELECT cu.customer_id INTO v_customer FROM customers cu WHERE cu.tenant_id = rp.tenant_id AND cu.phone = p_caller;
  INSERT INTO calls (tenant_id, pbx_call_id, route_point_id, caller, dialled, ivr_data, customer_id, node)
  VALUES (rp.tenant_id, p_pbx_call_id, rp.route_point_id, p_caller, p_dialled, coalesce(p_ivr_data, '{}'), v_customer,
          p_node)
  RETURNING call_id INTO v_call;
  INSERT INTO call_events (tenant_id, call_id, kind, device, detail)
  VALUES (rp.tenant_id, v_call, 'offered', p_route_point,
          jsonb_build_object('caller', p_caller, 'dialled', p_dialled, 'pbx_call_id', p_pbx_call_id));
  RETURN routing_apply(v_call, route_call(v_call), p_node, p_reserve_seconds);
END $$;

-- The router's timer for a waiting call: opening hours, max wait (to the overflow queue or the
-- closed destination), time and ratio overflow, escalation (by trying again), position.
CREATE FUNCTION recheck_waiting_call(p_call_id bigint, p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  w waiting_calls;
  q queues;
  v_op record;
BEGIN
  SELECT * INTO w FROM waiting_calls wc WHERE wc.call_id = p_call_id FOR UPDATE;
  IF NOT FOUND THEN
    RETURN routing_decision(p_call_id, 'gone', 'no longer waiting');
  END IF;
  SELECT * INTO q FROM queues WHERE queue_id = w.queue_id;
  IF NOT queue_is_open(q.queue_id, routing_now()) THEN
    RETURN routing_close(p_call_id, q, 'queue ' || q.name || ' closed (opening hours)');
  END IF;
  SELECT * INTO v_op FROM pick_operator(p_call_id, p_reserve_seconds);
  IF v_op.operator_id IS NOT NULL THEN
    RETURN routing_decision(p_call_id, 'operator', 'waited in queue ' || q.name, q.queue_id, NULL, v_op.operator_id,
                            v_op.device);
  END IF;
  IF q.max_wait_seconds IS NOT NULL AND now() - w.queue_since >= make_interval(secs => q.max_wait_seconds) THEN
    IF q.overflow_queue_id IS NOT NULL THEN
      INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
      VALUES (q.tenant_id, p_call_id, 'overflowed', q.queue_id,
              jsonb_build_object('to_queue_id', q.overflow_queue_id, 'reason', 'max_wait_seconds'));
      RETURN routing_enter_queue(p_call_id, q.overflow_queue_id, w.priority - q.priority, '{}', '{}', w.node,
                                 p_reserve_seconds, 1, 'queue ' || q.name || ' max wait reached');
    END IF;
    RETURN routing_close(p_call_id, q, 'queue ' || q.name || ' max wait reached');
  END IF;
  RETURN routing_waiting(p_call_id, q, p_reserve_seconds, 'waiting in queue ' || q.name);
END $$;

-- Reservations not confirmed in time: the operators are ready again (returned so the router
-- can hand them waiting calls).
CREATE FUNCTION expire_reservations() RETURNS TABLE (operator_id bigint, call_id bigint) LANGUAGE sql AS $$
  WITH expired AS (
    SELECT p.operator_id, p.current_call_id FROM presence p
     WHERE p.state = 'reserved' AND p.reserved_until < now()
     FOR UPDATE SKIP LOCKED),
  freed AS (
    UPDATE presence p SET state = 'ready', current_call_id = NULL, reserved_until = NULL, since = now()
      FROM expired e WHERE p.operator_id = e.operator_id
    RETURNING p.operator_id, p.tenant_id, e.current_call_id AS call_id),
  logged AS (
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id)
    SELECT f.tenant_id, f.call_id, 'reservation_expired', f.operator_id FROM freed f)
  SELECT f.operator_id, f.call_id FROM freed f
$$;

-- The PBX rang the reserved operator: the reservation holds (state ringing).
CREATE FUNCTION confirm_reservation(p_operator_id bigint, p_call_id bigint) RETURNS boolean LANGUAGE sql AS $$
  WITH done AS (
    UPDATE presence p SET state = 'ringing', reserved_until = NULL, since = now()
     WHERE p.operator_id = p_operator_id AND p.state = 'reserved' AND p.current_call_id = p_call_id
    RETURNING p.tenant_id),
  logged AS (
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id)
    SELECT d.tenant_id, p_call_id, 'reservation_confirmed', p_operator_id FROM done d)
  SELECT EXISTS (SELECT 1 FROM done)
$$;

-- The reservation is not used (the PBX refused the route, or the answer came too late): the
-- operator is ready again at once.
CREATE FUNCTION release_reservation(p_operator_id bigint, p_call_id bigint) RETURNS boolean LANGUAGE sql AS $$
  WITH done AS (
    UPDATE presence p SET state = 'ready', current_call_id = NULL, reserved_until = NULL, since = now()
     WHERE p.operator_id = p_operator_id AND p.state = 'reserved' AND p.current_call_id = p_call_id
    RETURNING p.tenant_id),
  logged AS (
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id)
    SELECT d.tenant_id, p_call_id, 'reservation_released', p_operator_id FROM done d)
  SELECT EXISTS (SELECT 1 FROM done)
$$;

-- The wait thresholds of each queue (escalation steps, overflow, max wait) for the router's timers.
CREATE FUNCTION routing_queue_timers()
RETURNS TABLE (queue_id bigint, check_after_seconds integer[]) LANGUAGE sql STABLE AS $$
  SELECT q.queue_id,
         ARRAY(SELECT DISTINCT x FROM unnest(
                 ARRAY(SELECT s.after_seconds FROM queue_escalation_steps s WHERE s.queue_id = q.queue_id)
                 || ARRAY[q.overflow_after_seconds, q.max_wait_seconds]) AS x
                WHERE x IS NOT NULL AND x > 0 ORDER BY x)
    FROM queues q
$$;

-- Rule, queue and skill changes are announced (LISTEN routing_rules) so every node refreshes
-- its cached queue timers on the next call.
CREATE FUNCTION routing_rules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('routing_rules', TG_TABLE_NAME);
  RETURN NULL;
END $$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['routing_rules', 'routing_rule_skills', 'queues', 'queue_skills', 'queue_opening_hours',
                           'queue_escalation_steps', 'queue_escalation_skills', 'skills', 'route_points']
  LOOP
    EXECUTE format('CREATE TRIGGER routing_rules_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION routing_rules_notify()', t);
  END LOOP;
END $$;
