-- An experiment, not a migration (docs/benchmarks.md, "## Routing", "The decision in a few
-- statements"): offer_call_few decides a new call the way offer_call does, in three or
-- four statements instead of ~30 while the default route_call, route_call_by_rules and
-- pick_operator are in place (checked on every call against routing_default_functions: the
-- pg_proc row versions last seen with the default bodies), falling back to offer_call otherwise:
--   1. route point, customer, rule (routing_rule_for, inlined), queue, its skills, the sticky
--      operator, a new call id; the fast way only for a queue with no opening hours, no overflow
--      from the first second and a rule without a destination or skills of its own;
--   2. reserve_operator (the strategies, unchanged);
--   3. the calls row and its journal row (and the waiting_calls row when nobody is free).
-- It reserves an operator for every bench decision (the script checks) and costs MORE:
-- 2,754,896 instructions per decision against offer_call's 2,705,554 on the same queues.
-- PostgreSQL pays per plan node it initialises and per relation it opens on every execution, not
-- per statement: one big statement has as many nodes as the small ones it replaces, and the
-- admin-function check alone (pg_proc and one more table opened per call) costs 83k.
--   DECISION_FUNCTION=offer_call_few DECISION_QUEUE_STEP=5 bench/decision_instructions.sh \
--     build/rel/bench/bench_routing bench/experiments/few_statements_decision.sql

CREATE FUNCTION routing_rule_for(p_tenant_id bigint, p_route_point_id bigint, p_caller text, p_dialled text,
                                 p_ivr_data jsonb, p_customer_id bigint)
RETURNS TABLE (rule_id bigint, queue_id bigint, destination text, priority integer, skills jsonb, note text)
LANGUAGE sql STABLE AS $$
  SELECT rr.rule_id, rr.queue_id, rr.destination, rr.priority,
         (SELECT coalesce(jsonb_object_agg(s.name, rs.min_level), '{}')
            FROM routing_rule_skills rs JOIN skills s ON s.skill_id = rs.skill_id
           WHERE rs.rule_id = rr.rule_id),
         'rule ' || rr.rule_id || CASE WHEN rr.name <> '' THEN ' (' || rr.name || ')' ELSE '' END
    FROM routing_rules rr,
         (SELECT routing_now() AT TIME ZONE tz.time_zone AS at FROM tenants tz WHERE tz.tenant_id = p_tenant_id) l
   WHERE rr.tenant_id = p_tenant_id AND rr.enabled
     AND (rr.route_point_id IS NULL OR rr.route_point_id = p_route_point_id)
     AND (rr.dialled IS NULL OR rr.dialled = p_dialled)
     AND (rr.caller_prefix IS NULL OR starts_with(p_caller, rr.caller_prefix))
     AND (rr.ivr_match IS NULL OR p_ivr_data @> rr.ivr_match)
     AND (rr.customer_match IS NULL
          OR coalesce((SELECT to_jsonb(cu) FROM customers cu WHERE cu.customer_id = p_customer_id) @> rr.customer_match,
                      false))
     AND (rr.iso_dows IS NULL OR extract(isodow FROM l.at)::smallint = ANY (rr.iso_dows))
     AND (rr.time_from IS NULL
          OR (rr.time_from <= rr.time_to AND l.at::time >= rr.time_from AND l.at::time < rr.time_to)
          OR (rr.time_from > rr.time_to AND (l.at::time >= rr.time_from OR l.at::time < rr.time_to)))
   ORDER BY rr.rule_order, rr.rule_id
   LIMIT 1
$$;

CREATE TABLE routing_default_functions (
  function_oid  oid PRIMARY KEY,
  function_xmin xid NOT NULL
);

-- Notes which of those functions have their default bodies now (by checksum of the body). Run by
-- this migration and with every queue-statistics refresh of the router, so a function restored to
-- its default, or a database restored from a dump (new row versions), takes the short way again
-- within seconds. True when all three are the defaults. A migration that changes one of these
-- functions' default bodies changes its checksum here too.
CREATE FUNCTION routing_note_default_functions() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_defaults oid[];
BEGIN
  SELECT coalesce(array_agg(p.oid), '{}') INTO v_defaults
    FROM pg_proc p
    JOIN (VALUES (to_regprocedure('route_call(calls)'), '687c1ef102810ab370e1d2f8587ec8ba'),
                 (to_regprocedure('route_call_by_rules(calls)'), '793675e7281352a473de561b729ce26d'),
                 (to_regprocedure('pick_operator(calls, waiting_calls, integer)'), '66eb054397ad16dc8f2aa38df391d027'))
           AS d(fn, body_md5) ON p.oid = d.fn AND md5(p.prosrc) = d.body_md5;
  -- rows are written only when something changed: a refresh every few seconds writes nothing
  DELETE FROM routing_default_functions d
   WHERE NOT d.function_oid = ANY (v_defaults)
      OR d.function_xmin <> (SELECT p.xmin FROM pg_proc p WHERE p.oid = d.function_oid);
  INSERT INTO routing_default_functions (function_oid, function_xmin)
  SELECT p.oid, p.xmin FROM pg_proc p
   WHERE p.oid = ANY (v_defaults)
     AND NOT EXISTS (SELECT 1 FROM routing_default_functions d WHERE d.function_oid = p.oid);
  RETURN cardinality(v_defaults) = 3;
END $$;

SELECT routing_note_default_functions();

CREATE FUNCTION offer_call_few(p_route_point text, p_pbx_call_id text, p_caller text, p_dialled text,
                           p_ivr_data jsonb DEFAULT '{}', p_node text DEFAULT NULL, p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  o record;
  v_chosen bigint;
  v_device text;
  v_offer jsonb;
BEGIN
  SELECT nextval('calls_call_id_seq') AS call_id, rp.tenant_id, rp.route_point_id, cu.customer_id, q,
         coalesce(r.priority, 0) AS priority, coalesce(r.note, 'default queue of the route point') AS reason,
         ks.ids, ks.levels,
         CASE WHEN q.strategy = 'sticky' AND cu.customer_id IS NOT NULL THEN
           (SELECT coalesce(prev.last_operator_id, prev.operator_id)
              FROM calls prev
             WHERE prev.tenant_id = rp.tenant_id AND prev.customer_id = cu.customer_id
               AND prev.answered_at IS NOT NULL AND prev.ended_at > now() - make_interval(days => q.sticky_days)
             ORDER BY prev.ended_at DESC
             LIMIT 1)
         END AS sticky
    INTO o
    FROM route_points rp
    LEFT JOIN customers cu ON cu.tenant_id = rp.tenant_id AND cu.phone = p_caller
    LEFT JOIN LATERAL routing_rule_for(rp.tenant_id, rp.route_point_id, p_caller, p_dialled,
                                       coalesce(p_ivr_data, '{}'), cu.customer_id) r ON true
    JOIN queues q ON q.queue_id = CASE WHEN r.rule_id IS NULL THEN rp.default_queue_id ELSE r.queue_id END
                 AND q.tenant_id = rp.tenant_id
    CROSS JOIN LATERAL (SELECT coalesce(array_agg(qs.skill_id ORDER BY qs.min_level DESC, qs.skill_id), '{}') AS ids,
                               coalesce(array_agg(qs.min_level ORDER BY qs.min_level DESC, qs.skill_id), '{}') AS levels
                          FROM queue_skills qs WHERE qs.queue_id = q.queue_id) ks
   WHERE rp.device = p_route_point
     AND (r.rule_id IS NULL OR (r.destination IS NULL AND r.skills = '{}'))
     AND NOT EXISTS (SELECT 1 FROM queue_opening_hours h WHERE h.queue_id = q.queue_id)
     AND (q.overflow_queue_id IS NULL OR q.overflow_after_seconds IS DISTINCT FROM 0)
     AND (SELECT count(*) FROM routing_default_functions d JOIN pg_proc p
                                ON p.oid = d.function_oid AND p.xmin = d.function_xmin) = 3;
  IF NOT FOUND THEN
    RETURN offer_call(p_route_point, p_pbx_call_id, p_caller, p_dialled, p_ivr_data, p_node, p_reserve_seconds);
  END IF;

  -- the reservation names the call before its row exists: checked at commit (INITIALLY DEFERRED)
  SELECT ro.operator_id, ro.device INTO v_chosen, v_device
    FROM reserve_operator(o.call_id, o.tenant_id, o.q, o.ids, o.levels,
                          now() + make_interval(secs => p_reserve_seconds), o.sticky) ro;
  v_offer := jsonb_build_object('caller', p_caller, 'dialled', p_dialled, 'pbx_call_id', p_pbx_call_id);
  IF v_chosen IS NOT NULL THEN
    WITH c AS (
      INSERT INTO calls (call_id, tenant_id, pbx_call_id, direction, route_point_id, caller, dialled, ivr_data,
                         customer_id, queue_id, final_queue_id, offered_at, queued_at, node)
      OVERRIDING SYSTEM VALUE
      VALUES (o.call_id, o.tenant_id, p_pbx_call_id, 'inbound', o.route_point_id, p_caller, p_dialled,
              coalesce(p_ivr_data, '{}'), o.customer_id, (o.q).queue_id, (o.q).queue_id, now(), now(), p_node)
      RETURNING call_id)
    INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
    SELECT o.tenant_id, c.call_id, 'reserved', v_chosen, (o.q).queue_id, v_device,
           v_offer || jsonb_build_object('route_point', p_route_point, 'strategy', (o.q).strategy, 'waited_seconds', 0)
      FROM c;
    RETURN routing_decision(o.call_id, 'operator', o.reason, (o.q).queue_id, NULL, v_chosen, v_device);
  END IF;

  WITH c AS (
    INSERT INTO calls (call_id, tenant_id, pbx_call_id, direction, route_point_id, caller, dialled, ivr_data,
                       customer_id, queue_id, offered_at, queued_at, node)
    OVERRIDING SYSTEM VALUE
    VALUES (o.call_id, o.tenant_id, p_pbx_call_id, 'inbound', o.route_point_id, p_caller, p_dialled,
            coalesce(p_ivr_data, '{}'), o.customer_id, (o.q).queue_id, now(), now(), p_node)
    RETURNING call_id),
  e AS (
    INSERT INTO call_events (tenant_id, call_id, kind, device, detail)
    SELECT o.tenant_id, c.call_id, 'offered', p_route_point, v_offer FROM c)
  INSERT INTO waiting_calls (call_id, tenant_id, queue_id, priority, waiting_since, queue_since, skill_ids,
                             skill_levels, also_queue_ids, node)
  SELECT c.call_id, o.tenant_id, (o.q).queue_id, o.priority + (o.q).priority, now(), now(), o.ids, o.levels, '{}',
         p_node
    FROM c;
  RETURN routing_queue_full_or_waiting(o.call_id, o.q, o.priority, p_node, p_reserve_seconds, 0, o.reason);
END $$;
