-- An experiment, not a migration: how much a decision would save as ONE statement instead of the
-- PL/pgSQL chain offer_call -> route_call -> pick_operator -> reserve_operator (docs/benchmarks.md,
-- "## Routing"). Only the path the bench's longest-idle queues take: a rule or the route point's
-- default queue, the queue's one skill, the longest idle ready operator reserved, the calls row
-- and the 'reserved' journal row, as offer_call writes them. No opening hours, no skills asked by
-- the rule, no overflow, escalation, sticky or round robin, no queued path: a real version needs
-- those (or falls back to offer_call for them) and must leave an admin's own route_call and
-- pick_operator in charge (migration 0053 shows how to tell).
--   DECISION_FUNCTION=offer_call_fast DECISION_QUEUE_STEP=5 bench/decision_instructions.sh \
--     build/rel/bench/bench_routing bench/experiments/one_statement_decision.sql
--   DECISION_QUEUE_STEP=5 bench/decision_instructions.sh build/rel/bench/bench_routing \
--     bench/experiments/one_statement_decision.sql          (offer_call on the same queues)
CREATE FUNCTION offer_call_fast(p_route_point text, p_pbx_call_id text, p_caller text, p_dialled text,
                                p_ivr_data jsonb DEFAULT '{}', p_node text DEFAULT NULL,
                                p_reserve_seconds integer DEFAULT 10)
RETURNS route_decision LANGUAGE plpgsql AS $$
DECLARE
  d route_decision;
BEGIN
WITH rp AS (
  SELECT rp.tenant_id, rp.route_point_id, rp.default_queue_id, cu.customer_id
    FROM route_points rp LEFT JOIN customers cu ON cu.tenant_id = rp.tenant_id AND cu.phone = p_caller
   WHERE rp.device = p_route_point),
rule AS (
  SELECT rr.queue_id
    FROM routing_rules rr, rp
   WHERE rr.tenant_id = rp.tenant_id AND rr.enabled
     AND (rr.route_point_id IS NULL OR rr.route_point_id = rp.route_point_id)
     AND (rr.dialled IS NULL OR rr.dialled = p_dialled)
     AND (rr.caller_prefix IS NULL OR starts_with(p_caller, rr.caller_prefix))
     AND (rr.ivr_match IS NULL OR p_ivr_data @> rr.ivr_match)
   ORDER BY rr.rule_order, rr.rule_id LIMIT 1),
q AS (
  SELECT q.queue_id, q.strategy FROM queues q, rp
   WHERE q.queue_id = coalesce((SELECT queue_id FROM rule), rp.default_queue_id)),
need AS (
  SELECT qs.skill_id, qs.min_level FROM queue_skills qs, q WHERE qs.queue_id = q.queue_id LIMIT 1),
cand AS (
  SELECT p.operator_id FROM ready_skills rs JOIN presence p ON p.operator_id = rs.operator_id
   WHERE rs.tenant_id = (SELECT tenant_id FROM rp) AND rs.skill_id = (SELECT skill_id FROM need)
     AND rs.level >= (SELECT min_level FROM need) AND p.state = 'ready'
   ORDER BY rs.last_call_ended NULLS FIRST, rs.operator_id LIMIT 1
   FOR UPDATE OF p SKIP LOCKED),
id AS (SELECT nextval('calls_call_id_seq') AS call_id),
res AS (
  UPDATE presence p SET state = 'reserved', current_call_id = (SELECT call_id FROM id),
         reserved_until = now() + make_interval(secs => p_reserve_seconds), since = now()
    FROM cand WHERE p.operator_id = cand.operator_id
  RETURNING p.operator_id, p.device),
c AS (
  INSERT INTO calls (call_id, tenant_id, pbx_call_id, direction, route_point_id, caller, dialled, ivr_data,
                     customer_id, queue_id, final_queue_id, offered_at, queued_at, node)
  OVERRIDING SYSTEM VALUE
  SELECT id.call_id, rp.tenant_id, p_pbx_call_id, 'inbound', rp.route_point_id, p_caller, p_dialled, p_ivr_data,
         rp.customer_id, q.queue_id, q.queue_id, now(), now(), p_node
    FROM id, rp, q
  RETURNING call_id),
e AS (
  INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
  SELECT rp.tenant_id, id.call_id, 'reserved', res.operator_id, q.queue_id, res.device,
         jsonb_build_object('caller', p_caller, 'dialled', p_dialled, 'pbx_call_id', p_pbx_call_id,
                            'route_point', p_route_point, 'strategy', q.strategy, 'waited_seconds', 0)
    FROM id, rp, q, res)
SELECT id.call_id, 'operator', res.operator_id, res.device, q.queue_id, NULL, NULL, NULL, 'rule' INTO d
  FROM id, res, q, c;
RETURN d;
END $$;
