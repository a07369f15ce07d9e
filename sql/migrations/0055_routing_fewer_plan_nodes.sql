-- Fewer plan nodes on a decision's common path (bench/decision_instructions.sh, figures in
-- docs/benchmarks.md "## Routing"). PostgreSQL initialises every node of a statement's plan,
-- subplans that never run included, at every execution (~15-25k instructions a node): a
-- decision costs what its plans have in nodes, not what its statements do (merging statements
-- was measured to save nothing). Same decisions:
-- * offer_call reads the queue's skills alone when the rule asked for none, instead of merging
--   them with the rule's in a six-node statement (-46k).
-- * route_call_by_rules names the rule's skills with a lookup per skill instead of a hash join
--   that is started even when the rule has no skills (-21k), unless an administrator has replaced
--   0017's function with his own (kept as it is, as 0053 does for route_call).

-- Not done, both in reserve_operator: its test of the skills beyond the first as a PL/pgSQL
-- function returning at once for a one-skill call (-40k a decision, but ~15 us instead of ~4 us
-- per candidate it rejects: a two-skill call walking 2,000 holders of the first took 31 ms, not
-- 8); a sticky queue's last operator probed before the reservation is started for him (-53k for
-- a sticky decision, ~0.4 % of all: not worth another whole copy of the function).

-- As in 0052; the queue's skills alone when the rule asked for none.
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
      -- the queue's skills plus the requested ones, highest level first (best_skill ranks by the first);
      -- merged only when the rule asked for skills (the merge is six plan nodes to start on every call)
      IF cardinality(v_ids) = 0 THEN
        SELECT coalesce(array_agg(qs.skill_id ORDER BY qs.min_level DESC, qs.skill_id), '{}'),
               coalesce(array_agg(qs.min_level ORDER BY qs.min_level DESC, qs.skill_id), '{}')
          INTO w.skill_ids, w.skill_levels
          FROM queue_skills qs WHERE qs.queue_id = q.queue_id;
      ELSE
        SELECT coalesce(array_agg(s.skill_id ORDER BY s.lvl DESC, s.skill_id), '{}'),
               coalesce(array_agg(s.lvl ORDER BY s.lvl DESC, s.skill_id), '{}')
          INTO w.skill_ids, w.skill_levels
          FROM (SELECT x.skill_id, max(x.lvl)::smallint AS lvl
                  FROM (SELECT qs.skill_id, qs.min_level AS lvl FROM queue_skills qs WHERE qs.queue_id = q.queue_id
                        UNION ALL
                        SELECT r.skill_id, r.lvl FROM unnest(v_ids, v_levels) AS r(skill_id, lvl)) x
                 GROUP BY x.skill_id) s;
      END IF;
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

DO $$
BEGIN
  IF (SELECT md5(p.prosrc) FROM pg_proc p WHERE p.oid = 'route_call_by_rules(calls)'::regprocedure)
     = '793675e7281352a473de561b729ce26d' THEN  -- 0017's body
    CREATE OR REPLACE FUNCTION route_call_by_rules(c calls) RETURNS route_target LANGUAGE plpgsql STABLE AS $f$
    DECLARE
      v_name text;
      t route_target;
    BEGIN
      SELECT rr.queue_id, rr.destination, rr.priority, rr.rule_id, rr.name,
             (SELECT coalesce(jsonb_object_agg((SELECT s.name FROM skills s WHERE s.skill_id = rs.skill_id),
                                              rs.min_level), '{}')
                FROM routing_rule_skills rs WHERE rs.rule_id = rr.rule_id)
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
    END $f$;
  ELSE
    RAISE NOTICE 'route_call_by_rules(calls) has been replaced by an administrator: kept as it is';
  END IF;
END $$;
