-- Less PostgreSQL work per written row of calls and presence, same rules (counted with
-- bench/decision_instructions.sh, figures in docs/benchmarks.md "## Routing"):
-- * PostgreSQL reads a table's CHECK constraints from their stored node trees and plans them
--   again for every INSERT or UPDATE statement: with call_events' one, the 11 checks of calls and
--   the 6 of presence were ~12 % of a route decision's instructions, and every presence move and
--   call write paid them too. Each table now has one CHECK that calls a PL/pgSQL function,
--   compiled once per session (-8 %); a broken rule is still refused with check_violation
--   (SQLSTATE 23514), the message and the error's constraint field naming the rule (the calls
--   rules have names now; the four durations share one).
--   The functions take the columns they check, not the row: the constraint then depends on
--   those columns, so a later migration that drops or retypes one is refused until it replaces
--   the function and the constraint too (a row argument would let it through and make every
--   write fail). A rule changed later applies to new writes only, as with NOT VALID below.
-- * The presence -> calls reference is checked at commit (INITIALLY DEFERRED): offer_call
--   reserves a new call's operator before it inserts the calls row, and its two SET CONSTRAINTS
--   statements were ~3.5 % of a decision. A statement in autocommit sees no difference; in a
--   transaction of several statements a dangling reference fails at COMMIT. The call-record
--   writer checks it at once again (SET CONSTRAINTS ALL IMMEDIATE) when it replays a failed batch
--   write by write, so one bad write is still refused alone.

CREATE FUNCTION presence_rules_hold(state presence_state, current_call_id bigint, reason text, device text,
                                    reserved_until timestamptz, calls_handled integer)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  -- the first rule that is false (NULL passes, as in a CHECK)
  broken text := CASE
    -- an operator who is reserved, ringing, talking or holding has a current call
    WHEN (state NOT IN ('reserved', 'ringing', 'talking', 'held') OR current_call_id IS NOT NULL) IS FALSE
      THEN 'presence_busy_has_call'
    -- ready, not ready and logged out operators have no call
    WHEN (state NOT IN ('logged_out', 'ready', 'not_ready') OR current_call_id IS NULL) IS FALSE
      THEN 'presence_idle_has_no_call'
    -- a not-ready operator says why; nobody else has a reason
    WHEN ((state = 'not_ready') = (reason IS NOT NULL)) IS FALSE THEN 'presence_reason_iff_not_ready'
    -- a logged-in operator has a device; a logged-out one has none
    WHEN ((state = 'logged_out') = (device IS NULL)) IS FALSE THEN 'presence_device_iff_logged_in'
    WHEN ((state = 'reserved') = (reserved_until IS NOT NULL)) IS FALSE THEN 'presence_reservation_has_deadline'
    WHEN (calls_handled >= 0) IS FALSE THEN 'presence_calls_handled_check'
  END;
BEGIN
  IF broken IS NOT NULL THEN
    RAISE EXCEPTION 'new row for relation "presence" violates check constraint "%"', broken
      USING ERRCODE = 'check_violation', TABLE = 'presence', CONSTRAINT = broken;
  END IF;
  RETURN true;
END $$;

CREATE FUNCTION calls_rules_hold(offered_at timestamptz, queued_at timestamptz, answered_at timestamptz,
                                 ended_at timestamptz, disposition call_disposition, operator_id bigint,
                                 wait_seconds numeric, talk_seconds numeric, hold_seconds numeric,
                                 wrap_up_seconds numeric)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  -- the first rule that is false (NULL passes, as in a CHECK)
  broken text := CASE
    WHEN (queued_at >= offered_at) IS FALSE THEN 'calls_queued_after_offered'
    WHEN (answered_at >= offered_at) IS FALSE THEN 'calls_answered_after_offered'
    WHEN (ended_at >= offered_at) IS FALSE THEN 'calls_ended_after_offered'
    WHEN (ended_at >= answered_at) IS FALSE THEN 'calls_ended_after_answered'
    -- a finished call says how it ended
    WHEN ((ended_at IS NULL) = (disposition IS NULL)) IS FALSE THEN 'calls_finished_has_disposition'
    WHEN (disposition IS DISTINCT FROM 'answered' OR answered_at IS NOT NULL) IS FALSE
      THEN 'calls_answered_disposition_was_answered'
    WHEN (answered_at IS NULL OR operator_id IS NOT NULL) IS FALSE THEN 'calls_answered_has_operator'
    WHEN (wait_seconds >= 0 AND talk_seconds >= 0 AND hold_seconds >= 0 AND wrap_up_seconds >= 0) IS FALSE
      THEN 'calls_durations_not_negative'
  END;
BEGIN
  IF broken IS NOT NULL THEN
    RAISE EXCEPTION 'new row for relation "calls" violates check constraint "%"', broken
      USING ERRCODE = 'check_violation', TABLE = 'calls', CONSTRAINT = broken;
  END IF;
  RETURN true;
END $$;

-- The constraints of 0001 by name (the unnamed ones as PostgreSQL named them): a CHECK an admin
-- added to these tables himself stays.
ALTER TABLE presence
  DROP CONSTRAINT presence_busy_has_call,
  DROP CONSTRAINT presence_idle_has_no_call,
  DROP CONSTRAINT presence_reason_iff_not_ready,
  DROP CONSTRAINT presence_device_iff_logged_in,
  DROP CONSTRAINT presence_reservation_has_deadline,
  DROP CONSTRAINT presence_calls_handled_check;
ALTER TABLE calls
  DROP CONSTRAINT calls_check,
  DROP CONSTRAINT calls_check1,
  DROP CONSTRAINT calls_check2,
  DROP CONSTRAINT calls_check3,
  DROP CONSTRAINT calls_check4,
  DROP CONSTRAINT calls_check5,
  DROP CONSTRAINT calls_check6,
  DROP CONSTRAINT calls_wait_seconds_check,
  DROP CONSTRAINT calls_talk_seconds_check,
  DROP CONSTRAINT calls_hold_seconds_check,
  DROP CONSTRAINT calls_wrap_up_seconds_check;
-- NOT VALID: the rows already obey these rules (the constraints they replace held them to the
-- same); validating would read every call record under an exclusive lock while other nodes
-- wait to route.
ALTER TABLE presence ADD CONSTRAINT presence_rules
  CHECK (presence_rules_hold(state, current_call_id, reason, device, reserved_until, calls_handled)) NOT VALID;
ALTER TABLE calls ADD CONSTRAINT calls_rules
  CHECK (calls_rules_hold(offered_at, queued_at, answered_at, ended_at, disposition, operator_id, wait_seconds,
                          talk_seconds, hold_seconds, wrap_up_seconds)) NOT VALID;

ALTER TABLE presence ALTER CONSTRAINT presence_tenant_id_current_call_id_fkey DEFERRABLE INITIALLY DEFERRED;

-- offer_call as in 0017, without SET CONSTRAINTS. One round trip per offered call, and the
-- rows written once: route_call decides on the call before its row exists; a call served at once is one calls insert (queue, final queue, queue
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
      -- the reservation names the call before its row exists: checked at commit (INITIALLY DEFERRED)
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
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
    VALUES (c.tenant_id, c.call_id, 'reserved', v_chosen, q.queue_id, v_device,
            v_offer || jsonb_build_object('route_point', p_route_point, 'strategy', q.strategy, 'waited_seconds', 0));
    RETURN routing_decision(c.call_id, 'operator', v_reason, q.queue_id, NULL, v_chosen, v_device);
  ELSIF v_kind = 'offered' THEN
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
