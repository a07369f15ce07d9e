-- A new call's decision writes each row once (bench/bench_routing.cpp, figures in
-- docs/benchmarks.md): a call that gets an operator at once is one calls insert with its queue,
-- final queue and queue time, the operator's reservation, and one journal row; it never enters
-- waiting_calls. What that changes for admins (docs/routing.md):
-- * route_call takes the calls row, route_call(c calls), instead of its id: the row is not
--   written until the decision is known.
-- * pick_operator takes the call and its requirements, pick_operator(c calls, w waiting_calls,
--   p_reserve_seconds), as records (for a new call neither is stored yet), and only chooses and
--   reserves: leaving the waiting list, the calls row and the journal are the caller's.
-- The four ready-operator indexes of presence are unused since ready_skills (0014); dropping
-- them saves four index updates on every presence write.

DROP INDEX presence_ready;
DROP INDEX presence_ready_idle;
DROP INDEX presence_ready_fewest;
DROP INDEX presence_ready_by_id;

-- offer_call reserves a new call's operator before it writes the calls row (one insert with
-- what the decision found); it defers this check to the insert, everyone else keeps it immediate.
ALTER TABLE presence ALTER CONSTRAINT presence_tenant_id_current_call_id_fkey DEFERRABLE INITIALLY IMMEDIATE;

-- offer_call takes the new call's id first (nextval), as a tenant session inserting calls may.
GRANT USAGE ON SEQUENCE calls_call_id_seq TO switchboard_tenant;

DROP FUNCTION route_call(bigint);
DROP FUNCTION pick_operator(bigint, integer);

-- Rules as data, for the call c (its row need not be stored). The tenant's local time and the
-- customer's row are read inside the rule lookup, the customer only if a rule asks for it.
CREATE FUNCTION route_call_by_rules(c calls) RETURNS route_target LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_name text;
  t route_target;
BEGIN
  SELECT rr.queue_id, rr.destination, rr.priority, rr.rule_id, rr.name,
         (SELECT coalesce(jsonb_object_agg(s.name, rs.min_level), '{}')
            FROM routing_rule_skills rs JOIN skills s ON s.skill_id = rs.skill_id
           WHERE rs.rule_id = rr.rule_id)
    INTO t.queue_id, t.destination, t.priority, t.rule_id, v_name, t.skills
    FROM routing_rules rr,
         (SELECT routing_now() AT TIME ZONE tz.time_zone AS at FROM tenants tz WHERE tz.tenant_id = c.tenant_id) l
   WHERE rr.tenant_id = c.tenant_id AND rr.enabled
     AND (rr.route_point_id IS NULL OR rr.route_point_id = c.route_point_id)
     AND (rr.dialled IS NULL OR rr.dialled = c.dialled)
     AND (rr.caller_prefix IS NULL OR starts_with(c.caller, rr.caller_prefix))
     AND (rr.ivr_match IS NULL OR c.ivr_data @> rr.ivr_match)
     AND (rr.customer_match IS NULL
          OR coalesce((SELECT to_jsonb(cu) FROM customers cu WHERE cu.customer_id = c.customer_id) @> rr.customer_match,
                      false))
     AND (rr.iso_dows IS NULL OR extract(isodow FROM l.at)::smallint = ANY (rr.iso_dows))
     AND (rr.time_from IS NULL
          OR (rr.time_from <= rr.time_to AND l.at::time >= rr.time_from AND l.at::time < rr.time_to)
          OR (rr.time_from > rr.time_to AND (l.at::time >= rr.time_from OR l.at::time < rr.time_to)))
   ORDER BY rr.rule_order, rr.rule_id
   LIMIT 1;
  IF FOUND THEN
    t.note := 'rule ' || t.rule_id || CASE WHEN v_name <> '' THEN ' (' || v_name || ')' ELSE '' END;
    RETURN t;
  END IF;
  SELECT rp.default_queue_id INTO t.queue_id FROM route_points rp WHERE rp.route_point_id = c.route_point_id;
  t.priority := 0;
  t.skills := '{}';
  t.note := CASE WHEN t.queue_id IS NULL THEN 'no rule matched and the route point has no default queue'
                 ELSE 'default queue of the route point' END;
  RETURN t;
END $$;

-- The 0010 form, by id, for admins' own functions written against it.
CREATE OR REPLACE FUNCTION route_call_by_rules(p_call_id bigint) RETURNS route_target LANGUAGE sql STABLE AS $$
  SELECT route_call_by_rules(c) FROM calls c WHERE c.call_id = p_call_id
$$;

-- Rules as code: an admin may CREATE OR REPLACE this with his own logic (docs/routing.md). c is
-- the new call as it will be stored (caller, dialled, ivr_data, customer_id, route_point_id,
-- tenant_id, call_id); it is not in calls yet. The default applies the routing_rules table.
CREATE FUNCTION route_call(c calls) RETURNS route_target LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN route_call_by_rules(c);
END $$;

-- route_call for a stored call (a call decided again): the admin's route_call(c calls) on its row.
CREATE FUNCTION route_call(p_call_id bigint) RETURNS route_target LANGUAGE sql STABLE AS $$
  SELECT route_call(c) FROM calls c WHERE c.call_id = p_call_id
$$;

-- call_requirements for the requirements w of a call (stored in waiting_calls or not yet).
CREATE FUNCTION call_requirements(w waiting_calls)
RETURNS TABLE (alt integer, skill_id bigint, min_level smallint) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  v_waited numeric := extract(epoch FROM now() - w.queue_since);
  v_drop smallint;
BEGIN
  SELECT s.level_drop INTO v_drop FROM queue_escalation_steps s
   WHERE s.queue_id = w.queue_id AND s.after_seconds <= v_waited
   ORDER BY s.after_seconds DESC LIMIT 1;
  v_drop := coalesce(v_drop, 0);
  RETURN QUERY
  SELECT 0, r.skill_id, greatest(1, r.min_level - v_drop)::smallint
    FROM unnest(w.skill_ids, w.skill_levels) AS r(skill_id, min_level)
  UNION ALL
  SELECT 0, NULL::bigint, NULL::smallint WHERE cardinality(w.skill_ids) = 0
  UNION ALL
  SELECT 1000 + (row_number() OVER (ORDER BY es.after_seconds, es.skill_id))::integer, es.skill_id, es.min_level
    FROM queue_escalation_skills es WHERE es.queue_id = w.queue_id AND es.after_seconds <= v_waited
  UNION ALL
  SELECT 2000 + o.n::integer, qs.skill_id, qs.min_level
    FROM unnest(w.also_queue_ids) WITH ORDINALITY AS o(queue_id, n)
    LEFT JOIN queue_skills qs ON qs.queue_id = o.queue_id;
END $$;

-- Reserves the best ready operator for call c with requirements w (queue, skills highest level
-- first, overflow queues, queue_since for escalation), by the queue's strategy, or returns no row.
-- It only chooses and reserves: the caller takes the call off the waiting list, writes the calls
-- row and the journal. The choice and the reservation are one statement (FOR UPDATE SKIP LOCKED +
-- UPDATE ... RETURNING), so two transactions never reserve the same operator. An admin may
-- CREATE OR REPLACE it (same signature).
CREATE FUNCTION pick_operator(c calls, w waiting_calls, p_reserve_seconds integer DEFAULT 10)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  q queues;
  a record;
  v_until timestamptz := now() + make_interval(secs => p_reserve_seconds);
  v_sticky bigint;
  v_chosen bigint;
  v_device text;
  v_one_way boolean := cardinality(w.also_queue_ids) = 0;
BEGIN
  SELECT * INTO q FROM queues WHERE queue_id = w.queue_id;
  IF q.strategy = 'sticky' AND c.customer_id IS NOT NULL THEN
    SELECT coalesce(prev.last_operator_id, prev.operator_id) INTO v_sticky
      FROM calls prev
     WHERE prev.tenant_id = c.tenant_id AND prev.customer_id = c.customer_id AND prev.call_id <> c.call_id
       AND prev.answered_at IS NOT NULL AND prev.ended_at > now() - make_interval(days => q.sticky_days)
     ORDER BY prev.ended_at DESC
     LIMIT 1;
  END IF;
  -- one way to qualify (no escalation step reached, no overflow queue): the call's own skills;
  -- a call that has just entered its queue has reached no step (after_seconds > 0)
  IF v_one_way AND w.queue_since < now() THEN
    v_one_way := NOT EXISTS (SELECT 1 FROM queue_escalation_steps s
                              WHERE s.queue_id = w.queue_id
                                AND s.after_seconds <= extract(epoch FROM now() - w.queue_since));
  END IF;
  IF v_one_way THEN
    SELECT ro.operator_id, ro.device INTO v_chosen, v_device
      FROM reserve_operator(w.call_id, w.tenant_id, q, w.skill_ids, w.skill_levels, v_until, v_sticky) ro;
  ELSE
    FOR a IN
      SELECT r.alt,
             coalesce(array_agg(r.skill_id ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS ids,
             coalesce(array_agg(r.min_level ORDER BY r.min_level DESC, r.skill_id) FILTER (WHERE r.skill_id IS NOT NULL), '{}') AS levels
        FROM call_requirements(w) r
       GROUP BY r.alt
       ORDER BY r.alt
    LOOP
      SELECT ro.operator_id, ro.device INTO v_chosen, v_device
        FROM reserve_operator(w.call_id, w.tenant_id, q, a.ids, a.levels, v_until, v_sticky) ro;
      EXIT WHEN v_chosen IS NOT NULL;
    END LOOP;
  END IF;
  IF v_chosen IS NOT NULL THEN
    RETURN QUERY SELECT v_chosen, v_device;
  END IF;
END $$;

-- A stored waiting call w (locked by the caller) gets an operator if pick_operator finds one:
-- it leaves the waiting list, its calls row says the queue it was served from, and the journal
-- says who was reserved.
CREATE FUNCTION routing_take(w waiting_calls, p_reserve_seconds integer)
RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_call calls;
  v_chosen bigint;
  v_device text;
BEGIN
  SELECT * INTO v_call FROM calls WHERE call_id = w.call_id;
  SELECT po.operator_id, po.device INTO v_chosen, v_device FROM pick_operator(v_call, w, p_reserve_seconds) po;
  IF v_chosen IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM waiting_calls wc WHERE wc.call_id = w.call_id;
  UPDATE calls c SET final_queue_id = w.queue_id, queue_id = coalesce(c.queue_id, w.queue_id),
                     queued_at = coalesce(c.queued_at, now())
   WHERE c.call_id = w.call_id;
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
  VALUES (w.tenant_id, w.call_id, 'reserved', v_chosen, w.queue_id, v_device,
          jsonb_build_object('strategy', (SELECT q.strategy FROM queues q WHERE q.queue_id = w.queue_id),
                             'waited_seconds', round(extract(epoch FROM now() - w.waiting_since), 3)));
  RETURN QUERY SELECT v_chosen, v_device;
END $$;

-- A stored call enters (or moves to) a queue, keeping its place by age: closed, an operator now,
-- the overflow queue when this one is full, or waiting with position and expected wait. Used for
-- moves (full queue, max wait); a new call enters its first queue in offer_call.
CREATE OR REPLACE FUNCTION routing_enter_queue(p_call_id bigint, p_queue_id bigint, p_priority integer,
                                               p_skill_ids bigint[], p_skill_levels smallint[], p_node text,
                                               p_reserve_seconds integer, p_depth integer, p_reason text)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  q queues;
  w waiting_calls;
  v_ids bigint[];
  v_levels smallint[];
  v_op record;
BEGIN
  SELECT * INTO q FROM queues WHERE queue_id = p_queue_id;
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
  INSERT INTO waiting_calls AS wc (call_id, tenant_id, queue_id, priority, queue_since, skill_ids, skill_levels,
                                   also_queue_ids, node)
  VALUES (p_call_id, q.tenant_id, q.queue_id, p_priority + q.priority, now(), v_ids, v_levels,
          CASE WHEN q.overflow_queue_id IS NOT NULL AND q.overflow_after_seconds = 0 THEN ARRAY[q.overflow_queue_id]
               ELSE '{}' END,
          p_node)
  ON CONFLICT (call_id) DO UPDATE
    SET queue_id = excluded.queue_id, priority = excluded.priority, queue_since = excluded.queue_since,
        skill_ids = excluded.skill_ids, skill_levels = excluded.skill_levels, also_queue_ids = excluded.also_queue_ids
  RETURNING * INTO w;
  UPDATE calls c SET queue_id = coalesce(c.queue_id, q.queue_id), queued_at = coalesce(c.queued_at, now())
   WHERE c.call_id = p_call_id AND (c.queue_id IS NULL OR c.queued_at IS NULL);
  SELECT * INTO v_op FROM routing_take(w, p_reserve_seconds);
  IF v_op.operator_id IS NOT NULL THEN
    RETURN routing_decision(p_call_id, 'operator', p_reason, q.queue_id, NULL, v_op.operator_id, v_op.device);
  END IF;
  RETURN routing_queue_full_or_waiting(p_call_id, q, p_priority, p_node, p_reserve_seconds, p_depth, p_reason);
END $$;

-- A stored waiting call no operator took at once: the overflow queue or the closed destination
-- when its queue is full, else waiting (routing_waiting).
CREATE FUNCTION routing_queue_full_or_waiting(p_call_id bigint, q queues, p_priority integer, p_node text,
                                              p_reserve_seconds integer, p_depth integer, p_reason text)
RETURNS route_decision LANGUAGE plpgsql AS $$
BEGIN
  IF q.max_waiting_calls IS NOT NULL
     AND (SELECT count(*) FROM waiting_calls wc WHERE wc.queue_id = q.queue_id AND wc.call_id <> p_call_id)
         >= q.max_waiting_calls THEN
    IF q.overflow_queue_id IS NOT NULL AND p_depth < 5 THEN
      INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
      VALUES (q.tenant_id, p_call_id, 'overflowed', q.queue_id,
              jsonb_build_object('to_queue_id', q.overflow_queue_id, 'reason', 'max_waiting_calls'));
      RETURN routing_enter_queue(p_call_id, q.overflow_queue_id, p_priority, '{}', '{}', p_node, p_reserve_seconds,
                                 p_depth + 1, p_reason || '; queue ' || q.name || ' full');
    END IF;
    RETURN routing_close(p_call_id, q, p_reason || '; queue ' || q.name || ' full');
  END IF;
  RETURN routing_waiting(p_call_id, q, p_reserve_seconds, p_reason);
END $$;

-- Same contract as in 0010; an operator is taken through routing_take.
CREATE OR REPLACE FUNCTION routing_waiting(p_call_id bigint, q queues, p_reserve_seconds integer, p_reason text)
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
      UPDATE waiting_calls wc SET also_queue_ids = wc.also_queue_ids || q.overflow_queue_id
       WHERE wc.call_id = p_call_id
      RETURNING * INTO w;
      INSERT INTO call_events (tenant_id, call_id, kind, queue_id, detail)
      VALUES (q.tenant_id, p_call_id, 'overflowed', q.queue_id,
              jsonb_build_object('also_queue_id', q.overflow_queue_id, 'reason', v_why));
      p_reason := p_reason || '; also offered to overflow queue (' || v_why || ')';
      SELECT * INTO v_op FROM routing_take(w, p_reserve_seconds);
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

-- Same contract as in 0010; an operator is taken through routing_take.
CREATE OR REPLACE FUNCTION recheck_waiting_call(p_call_id bigint, p_reserve_seconds integer DEFAULT 10)
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
  SELECT * INTO v_op FROM routing_take(w, p_reserve_seconds);
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

-- routing_apply (0016) stays for a stored call decided again (it enters the queue through
-- routing_enter_queue above); offer_call decides a new call itself, before its row is written.

-- One round trip per offered call, and the rows written once: route_call decides on the call
-- before its row exists; a call served at once is one calls insert (queue, final queue, queue
-- time), the reservation and one journal row ('reserved', with the offer in its detail); a
-- call that waits is the calls insert, an 'offered' row and its waiting_calls row; a
-- destination, default or closed call is the calls insert and one row saying so.
CREATE OR REPLACE FUNCTION offer_call(p_route_point text, p_pbx_call_id text, p_caller text, p_dialled text,
                                      p_ivr_data jsonb DEFAULT '{}', p_node text DEFAULT NULL,
                                      p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  c calls;
  t route_target;
  q queues;
  w waiting_calls;
  v_kind text;  -- the journal row: routed, default_routed, closed, reserved or offered (waiting)
  v_reason text;
  v_unknown text;
  v_ids bigint[] := '{}';
  v_levels smallint[] := '{}';
  v_chosen bigint;
  v_device text;
  v_offer jsonb;
BEGIN
  SELECT rp.tenant_id, rp.route_point_id, cu.customer_id INTO c.tenant_id, c.route_point_id, c.customer_id
    FROM route_points rp LEFT JOIN customers cu ON cu.tenant_id = rp.tenant_id AND cu.phone = p_caller
   WHERE rp.device = p_route_point;
  IF NOT FOUND THEN
    RETURN routing_decision(NULL, 'default', 'unknown route point ' || p_route_point);
  END IF;
  c.call_id := nextval('calls_call_id_seq');
  c.pbx_call_id := p_pbx_call_id;
  c.direction := 'inbound';
  c.caller := p_caller;
  c.dialled := p_dialled;
  c.ivr_data := coalesce(p_ivr_data, '{}');
  c.offered_at := now();
  c.node := p_node;
  t := route_call(c);

  IF t.destination IS NOT NULL THEN
    v_kind := 'routed';
    v_reason := coalesce(t.note, 'route_call chose a destination');
  ELSIF t.queue_id IS NULL THEN
    v_kind := 'default_routed';
    v_reason := coalesce(t.note, 'route_call chose no queue');
  ELSE
    SELECT * INTO q FROM queues WHERE queue_id = t.queue_id AND tenant_id = c.tenant_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'route_call returned queue % which is not a queue of tenant %', t.queue_id, c.tenant_id;
    END IF;
    IF t.skills IS NOT NULL AND t.skills <> '{}' THEN
      -- a skill name the tenant does not have is an admin's typo: fail loudly (the PBX gets the fallback)
      SELECT k.key INTO v_unknown FROM jsonb_each_text(t.skills) k
       WHERE NOT EXISTS (SELECT 1 FROM skills s WHERE s.tenant_id = c.tenant_id AND s.name = k.key)
       LIMIT 1;
      IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'route_call asked for unknown skill "%"', v_unknown;
      END IF;
      SELECT coalesce(array_agg(s.skill_id), '{}'), coalesce(array_agg(k.value::smallint), '{}') INTO v_ids, v_levels
        FROM jsonb_each_text(t.skills) k JOIN skills s ON s.tenant_id = c.tenant_id AND s.name = k.key;
    END IF;
    v_reason := coalesce(t.note, 'route_call chose queue ' || t.queue_id);
    IF EXISTS (SELECT 1 FROM queue_opening_hours h WHERE h.queue_id = q.queue_id)
       AND NOT queue_is_open(q.queue_id, routing_now()) THEN
      v_kind := 'closed';
      v_reason := v_reason || '; queue ' || q.name || ' closed (opening hours)';
    ELSE
      w.call_id := c.call_id;
      w.tenant_id := c.tenant_id;
      w.queue_id := q.queue_id;
      w.priority := coalesce(t.priority, 0) + q.priority;
      w.waiting_since := now();
      w.queue_since := now();
      -- the queue's skills plus the requested ones, highest level first (best_skill ranks by the first)
      SELECT coalesce(array_agg(s.skill_id ORDER BY s.lvl DESC, s.skill_id), '{}'),
             coalesce(array_agg(s.lvl ORDER BY s.lvl DESC, s.skill_id), '{}')
        INTO w.skill_ids, w.skill_levels
        FROM (SELECT x.skill_id, max(x.lvl)::smallint AS lvl
                FROM (SELECT qs.skill_id, qs.min_level AS lvl FROM queue_skills qs WHERE qs.queue_id = q.queue_id
                      UNION ALL
                      SELECT r.skill_id, r.lvl FROM unnest(v_ids, v_levels) AS r(skill_id, lvl)) x
               GROUP BY x.skill_id) s;
      w.also_queue_ids := CASE WHEN q.overflow_queue_id IS NOT NULL AND q.overflow_after_seconds = 0
                               THEN ARRAY[q.overflow_queue_id] ELSE '{}' END;
      w.node := p_node;
      c.queue_id := q.queue_id;
      c.queued_at := now();
      -- the reservation names the call before its row exists: checked once the row is written
      SET CONSTRAINTS presence_tenant_id_current_call_id_fkey DEFERRED;
      SELECT po.operator_id, po.device INTO v_chosen, v_device FROM pick_operator(c, w, p_reserve_seconds) po;
      IF v_chosen IS NOT NULL THEN
        v_kind := 'reserved';
        c.final_queue_id := q.queue_id;
      ELSE
        v_kind := 'offered';
      END IF;
    END IF;
  END IF;

  INSERT INTO calls (call_id, tenant_id, pbx_call_id, direction, route_point_id, caller, dialled, ivr_data,
                     customer_id, queue_id, final_queue_id, offered_at, queued_at, node)
  OVERRIDING SYSTEM VALUE
  VALUES (c.call_id, c.tenant_id, c.pbx_call_id, c.direction, c.route_point_id, c.caller, c.dialled, c.ivr_data,
          c.customer_id, c.queue_id, c.final_queue_id, c.offered_at, c.queued_at, c.node);
  v_offer := jsonb_build_object('caller', p_caller, 'dialled', p_dialled, 'pbx_call_id', p_pbx_call_id);
  IF v_kind = 'reserved' THEN
    SET CONSTRAINTS presence_tenant_id_current_call_id_fkey IMMEDIATE;
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
    VALUES (c.tenant_id, c.call_id, 'reserved', v_chosen, q.queue_id, v_device,
            v_offer || jsonb_build_object('route_point', p_route_point, 'strategy', q.strategy, 'waited_seconds', 0));
    RETURN routing_decision(c.call_id, 'operator', v_reason, q.queue_id, NULL, v_chosen, v_device);
  ELSIF v_kind = 'offered' THEN
    SET CONSTRAINTS presence_tenant_id_current_call_id_fkey IMMEDIATE;
    INSERT INTO call_events (tenant_id, call_id, kind, device, detail)
    VALUES (c.tenant_id, c.call_id, 'offered', p_route_point, v_offer);
    INSERT INTO waiting_calls (call_id, tenant_id, queue_id, priority, waiting_since, queue_since, skill_ids,
                               skill_levels, also_queue_ids, node)
    VALUES (w.call_id, w.tenant_id, w.queue_id, w.priority, w.waiting_since, w.queue_since, w.skill_ids,
            w.skill_levels, w.also_queue_ids, w.node);
    RETURN routing_queue_full_or_waiting(c.call_id, q, coalesce(t.priority, 0), p_node, p_reserve_seconds, 0,
                                         v_reason);
  ELSIF v_kind = 'closed' THEN
    INSERT INTO call_events (tenant_id, call_id, kind, queue_id, device, detail)
    VALUES (c.tenant_id, c.call_id, 'closed', q.queue_id, q.closed_destination,
            v_offer || jsonb_build_object('route_point', p_route_point, 'reason', v_reason));
    RETURN routing_decision(c.call_id, 'closed', v_reason, q.queue_id, q.closed_destination);
  END IF;
  INSERT INTO call_events (tenant_id, call_id, kind, device, detail)
  VALUES (c.tenant_id, c.call_id, v_kind, coalesce(t.destination, p_route_point),
          v_offer || jsonb_build_object('route_point', p_route_point, 'reason', coalesce(t.note, '')));
  IF v_kind = 'routed' THEN
    RETURN routing_decision(c.call_id, 'destination', v_reason, NULL, t.destination);
  END IF;
  RETURN routing_decision(c.call_id, 'default', v_reason);
END $$;
