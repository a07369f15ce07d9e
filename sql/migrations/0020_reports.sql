-- Reporting for supervisors and tenants' tools: historical views by hour, queue-day and
-- operator-day, and live queue and operator statistics; every view is security_invoker, so a
-- switchboard_tenant session sees only its tenant's rows (row-level security of 0002).
-- Formulas and columns: docs/reports.md.

-- Operator state history: occupancy needs the time spent in each state, which the presence
-- row (current state only) forgets. One row per change of state or not-ready reason.
CREATE TABLE presence_history (
  history_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   bigint NOT NULL,
  operator_id bigint NOT NULL,
  state       presence_state NOT NULL,
  reason      text,
  at          timestamptz NOT NULL,
  FOREIGN KEY (tenant_id, operator_id) REFERENCES operators (tenant_id, operator_id) ON DELETE CASCADE
);
CREATE INDEX presence_history_by_operator ON presence_history (operator_id, at, history_id);
CREATE INDEX presence_history_by_tenant ON presence_history (tenant_id, at);

ALTER TABLE presence_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON presence_history USING (tenant_id = current_tenant_id())
  WITH CHECK (tenant_id = current_tenant_id());
-- tenant sessions may move presence (0002), so the trigger below inserts on their behalf
GRANT SELECT, INSERT ON presence_history TO switchboard_tenant;

-- The change is dated by presence.since when the writer set it, else by the clock.
CREATE FUNCTION presence_history_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO presence_history (tenant_id, operator_id, state, reason, at)
  VALUES (NEW.tenant_id, NEW.operator_id, NEW.state, NEW.reason,
          CASE WHEN NEW.since IS DISTINCT FROM OLD.since THEN NEW.since ELSE clock_timestamp() END);
  RETURN NULL;
END $$;
CREATE TRIGGER presence_history_append AFTER UPDATE OF state, reason ON presence
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.reason IS DISTINCT FROM NEW.reason)
  EXECUTE FUNCTION presence_history_append();

-- Operators logged in when this migration runs start their history now.
INSERT INTO presence_history (tenant_id, operator_id, state, reason, at)
SELECT p.tenant_id, p.operator_id, p.state, p.reason, p.since FROM presence p WHERE p.state <> 'logged_out';

-- 100 * part / whole, 2 decimals; NULL when there is nothing to divide by.
CREATE FUNCTION report_percent(p_part numeric, p_whole numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_whole > 0 THEN round(100 * p_part / p_whole, 2) END
$$;

-- total / count, 2 decimals; NULL when the count is zero.
CREATE FUNCTION report_average(p_total numeric, p_count numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_count > 0 THEN round(p_total / p_count, 2) END
$$;

-- Service level: answered within the target over answered plus abandoned after the target
-- (callers who hung up within the target are left out).
CREATE FUNCTION report_service_level(p_answered_within numeric, p_answered numeric, p_abandoned numeric,
                                     p_abandoned_within numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
  SELECT report_percent(p_answered_within, p_answered + p_abandoned - p_abandoned_within)
$$;

-- One row per call with everything the reports derive: local times of the tenant, the wait,
-- the service-level verdicts against the first queue's target and the handle time.
CREATE VIEW report_call_facts WITH (security_invoker = true) AS
SELECT c.call_id, c.tenant_id, t.time_zone, c.direction, c.queue_id, q.name AS queue_name, c.final_queue_id,
       c.operator_id, c.last_operator_id, c.offered_at, c.answered_at, c.ended_at, c.disposition,
       c.offered_at AT TIME ZONE t.time_zone AS offered_local,
       c.answered_at AT TIME ZONE t.time_zone AS answered_local,
       q.service_level_seconds,
       w.wait AS wait_seconds,
       c.answered_at IS NOT NULL AS answered,
       c.answered_at IS NOT NULL AND w.wait <= q.service_level_seconds AS answered_within_sl,
       c.disposition IN ('abandoned_waiting', 'abandoned_ringing') AS abandoned,
       c.disposition IN ('abandoned_waiting', 'abandoned_ringing') AND w.wait <= q.service_level_seconds
         AS abandoned_within_sl,
       c.disposition = 'overflowed' AS overflowed,
       c.disposition = 'transferred' AS transferred,
       c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL AS handled,
       coalesce(c.talk_seconds, 0) AS talk_seconds,
       coalesce(c.hold_seconds, 0) AS hold_seconds,
       coalesce(c.wrap_up_seconds, 0) AS wrap_up_seconds,
       CASE WHEN c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL
            THEN coalesce(c.talk_seconds, 0) + coalesce(c.hold_seconds, 0) + coalesce(c.wrap_up_seconds, 0) END
         AS handle_seconds
  FROM calls c
  JOIN tenants t ON t.tenant_id = c.tenant_id
  LEFT JOIN queues q ON q.queue_id = c.queue_id
  CROSS JOIN LATERAL (
    SELECT coalesce(c.wait_seconds, extract(epoch FROM coalesce(c.answered_at, c.ended_at) - c.offered_at)) AS wait) w;

-- A tenant's queued calls offered in [p_from, p_to) per first queue and tenant-local hour of
-- the offer: additive counts and sums, then the ratios. A plain SQL function, so the planner
-- inlines it and the range reads the calls_by_offered index.
CREATE FUNCTION report_queue_hours(p_from timestamptz, p_to timestamptz, p_tenant_id bigint)
RETURNS TABLE (tenant_id bigint, queue_id bigint, queue_name text, hour timestamp, hour_start timestamptz,
               offered integer, answered integer, answered_within_sl integer, abandoned integer,
               abandoned_within_sl integer, overflowed integer, transferred integer, handled integer,
               wait_seconds_answered numeric, talk_seconds numeric, hold_seconds numeric, wrap_up_seconds numeric,
               handle_seconds numeric, service_level_percent numeric, asa_seconds numeric, aht_seconds numeric,
               abandon_rate_percent numeric)
LANGUAGE sql STABLE AS $$
  SELECT s.*,
         report_service_level(s.answered_within_sl, s.answered, s.abandoned, s.abandoned_within_sl),
         report_average(s.wait_seconds_answered, s.answered), report_average(s.handle_seconds, s.handled),
         report_percent(s.abandoned, s.offered)
    FROM (
      SELECT f.tenant_id, f.queue_id, f.queue_name, date_trunc('hour', f.offered_local),
             date_trunc('hour', f.offered_local) AT TIME ZONE f.time_zone,
             count(*)::integer,
             count(*) FILTER (WHERE f.answered)::integer,
             count(*) FILTER (WHERE f.answered_within_sl)::integer,
             count(*) FILTER (WHERE f.abandoned)::integer,
             count(*) FILTER (WHERE f.abandoned_within_sl)::integer,
             count(*) FILTER (WHERE f.overflowed)::integer,
             count(*) FILTER (WHERE f.transferred)::integer,
             count(*) FILTER (WHERE f.handled)::integer,
             coalesce(sum(f.wait_seconds) FILTER (WHERE f.answered), 0),
             coalesce(sum(f.talk_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.hold_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.wrap_up_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.handle_seconds), 0)
        FROM report_call_facts f
       WHERE f.queue_id IS NOT NULL AND f.offered_at >= p_from AND f.offered_at < p_to
         AND f.tenant_id = p_tenant_id
       GROUP BY f.tenant_id, f.queue_id, f.queue_name, f.time_zone, date_trunc('hour', f.offered_local)
    ) s (tenant_id, queue_id, queue_name, hour, hour_start, offered, answered, answered_within_sl, abandoned,
         abandoned_within_sl, overflowed, transferred, handled, wait_seconds_answered, talk_seconds, hold_seconds,
         wrap_up_seconds, handle_seconds)
$$;

-- The hours added up per queue and tenant-local day; ratios recomputed from the sums.
CREATE FUNCTION report_queue_days(p_from timestamptz, p_to timestamptz, p_tenant_id bigint)
RETURNS TABLE (tenant_id bigint, queue_id bigint, queue_name text, day date, offered integer, answered integer,
               answered_within_sl integer, abandoned integer, abandoned_within_sl integer, overflowed integer,
               transferred integer, handled integer, wait_seconds_answered numeric, talk_seconds numeric,
               hold_seconds numeric, wrap_up_seconds numeric, handle_seconds numeric, service_level_percent numeric,
               asa_seconds numeric, aht_seconds numeric, abandon_rate_percent numeric)
LANGUAGE sql STABLE AS $$
  SELECT s.*,
         report_service_level(s.answered_within_sl, s.answered, s.abandoned, s.abandoned_within_sl),
         report_average(s.wait_seconds_answered, s.answered), report_average(s.handle_seconds, s.handled),
         report_percent(s.abandoned, s.offered)
    FROM (
      SELECT h.tenant_id, h.queue_id, h.queue_name, h.hour::date,
             sum(h.offered)::integer, sum(h.answered)::integer, sum(h.answered_within_sl)::integer,
             sum(h.abandoned)::integer, sum(h.abandoned_within_sl)::integer, sum(h.overflowed)::integer,
             sum(h.transferred)::integer, sum(h.handled)::integer, sum(h.wait_seconds_answered),
             sum(h.talk_seconds), sum(h.hold_seconds), sum(h.wrap_up_seconds), sum(h.handle_seconds)
        FROM report_queue_hours(p_from, p_to, p_tenant_id) h
       GROUP BY h.tenant_id, h.queue_id, h.queue_name, h.hour::date
    ) s (tenant_id, queue_id, queue_name, day, offered, answered, answered_within_sl, abandoned, abandoned_within_sl,
         overflowed, transferred, handled, wait_seconds_answered, talk_seconds, hold_seconds, wrap_up_seconds,
         handle_seconds)
$$;

-- A tenant's calls answered in [p_from, p_to) per operator (the first who answered) and tenant-local day
-- of the answer.
CREATE FUNCTION report_operator_days(p_from timestamptz, p_to timestamptz, p_tenant_id bigint)
RETURNS TABLE (tenant_id bigint, operator_id bigint, login text, full_name text, day date, calls_answered integer,
               transferred integer, handled integer, talk_seconds numeric, hold_seconds numeric,
               wrap_up_seconds numeric, handle_seconds numeric, aht_seconds numeric)
LANGUAGE sql STABLE AS $$
  SELECT s.*, report_average(s.handle_seconds, s.handled)
    FROM (
      SELECT f.tenant_id, f.operator_id, o.login, o.full_name, f.answered_local::date,
             count(*)::integer,
             count(*) FILTER (WHERE f.transferred)::integer,
             count(*) FILTER (WHERE f.handled)::integer,
             coalesce(sum(f.talk_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.hold_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.wrap_up_seconds) FILTER (WHERE f.handled), 0),
             coalesce(sum(f.handle_seconds), 0)
        FROM report_call_facts f
        JOIN operators o ON o.operator_id = f.operator_id
       WHERE f.answered AND f.answered_at >= p_from AND f.answered_at < p_to
         AND f.tenant_id = p_tenant_id
       GROUP BY f.tenant_id, f.operator_id, o.login, o.full_name, f.answered_local::date
    ) s (tenant_id, operator_id, login, full_name, day, calls_answered, transferred, handled, talk_seconds,
         hold_seconds, wrap_up_seconds, handle_seconds)
$$;
-- Operators' answered calls of a day (report_operator_days, operator_live_stats).
CREATE INDEX calls_by_answered ON calls (tenant_id, answered_at) WHERE answered_at IS NOT NULL;

-- The same over the whole history of every tenant the session sees, as views for reporting tools.
CREATE VIEW report_calls_by_hour WITH (security_invoker = true) AS
SELECT r.* FROM tenants t CROSS JOIN LATERAL report_queue_hours('-infinity', 'infinity', t.tenant_id) r;
CREATE VIEW report_queues WITH (security_invoker = true) AS
SELECT r.* FROM tenants t CROSS JOIN LATERAL report_queue_days('-infinity', 'infinity', t.tenant_id) r;
CREATE VIEW report_operators WITH (security_invoker = true) AS
SELECT r.* FROM tenants t CROSS JOIN LATERAL report_operator_days('-infinity', 'infinity', t.tenant_id) r;

-- Operators who may take a queue's calls: every operator of the tenant when the queue has no
-- skills, else those holding all its skills at their minimum level (as routing staffs it).
CREATE VIEW report_queue_operators WITH (security_invoker = true) AS
SELECT q.tenant_id, q.queue_id, p.operator_id, p.state
  FROM queues q
  JOIN presence p ON p.tenant_id = q.tenant_id
 WHERE NOT EXISTS (
   SELECT 1 FROM queue_skills qs
    WHERE qs.queue_id = q.queue_id
      AND NOT EXISTS (SELECT 1 FROM operator_skills os
                       WHERE os.operator_id = p.operator_id AND os.skill_id = qs.skill_id AND os.level >= qs.min_level));

-- The tenant-local day that contains p_at: [day_start, day_end).
CREATE FUNCTION report_day(p_tenant_id bigint, p_at timestamptz)
RETURNS TABLE (day_start timestamptz, day_end timestamptz) LANGUAGE sql STABLE AS $$
  SELECT date_trunc('day', p_at AT TIME ZONE t.time_zone) AT TIME ZONE t.time_zone,
         (date_trunc('day', p_at AT TIME ZONE t.time_zone) + interval '1 day') AT TIME ZONE t.time_zone
    FROM tenants t WHERE t.tenant_id = p_tenant_id
$$;

-- Every queue of the tenant now: calls waiting and the longest wait, its operators by state,
-- and the figures of the calls offered to it (first queue) since the tenant's midnight.
CREATE FUNCTION queue_live_stats(p_tenant_id bigint, p_at timestamptz DEFAULT now())
RETURNS TABLE (queue_id bigint, name text, service_level_seconds integer, waiting integer,
               longest_wait_seconds numeric, ready integer, busy integer, not_ready integer, logged_in integer,
               offered integer, answered integer, answered_within_sl integer, abandoned integer,
               abandoned_within_sl integer, overflowed integer, transferred integer, handled integer,
               service_level_percent numeric, asa_seconds numeric, aht_seconds numeric, abandon_rate_percent numeric)
LANGUAGE sql STABLE AS $$
  WITH d AS (SELECT * FROM report_day(p_tenant_id, p_at)),
  waiting AS (
    SELECT w.queue_id, count(*)::integer AS n,
           round(greatest(max(extract(epoch FROM p_at - w.waiting_since)), 0), 3) AS longest
      FROM waiting_calls w WHERE w.tenant_id = p_tenant_id GROUP BY w.queue_id),
  staff AS (
    SELECT m.queue_id,
           count(*) FILTER (WHERE m.state = 'ready')::integer AS ready,
           count(*) FILTER (WHERE m.state IN ('reserved', 'ringing', 'talking', 'held', 'wrap_up'))::integer AS busy,
           count(*) FILTER (WHERE m.state = 'not_ready')::integer AS not_ready,
           count(*) FILTER (WHERE m.state <> 'logged_out')::integer AS logged_in
      FROM report_queue_operators m WHERE m.tenant_id = p_tenant_id GROUP BY m.queue_id),
  today AS (SELECT t.* FROM d, report_queue_days(d.day_start, d.day_end, p_tenant_id) t)
  SELECT q.queue_id, q.name, q.service_level_seconds, coalesce(w.n, 0), coalesce(w.longest, 0),
         coalesce(s.ready, 0), coalesce(s.busy, 0), coalesce(s.not_ready, 0), coalesce(s.logged_in, 0),
         coalesce(t.offered, 0), coalesce(t.answered, 0), coalesce(t.answered_within_sl, 0),
         coalesce(t.abandoned, 0), coalesce(t.abandoned_within_sl, 0), coalesce(t.overflowed, 0),
         coalesce(t.transferred, 0), coalesce(t.handled, 0),
         t.service_level_percent, t.asa_seconds, t.aht_seconds, t.abandon_rate_percent
    FROM queues q
    LEFT JOIN waiting w ON w.queue_id = q.queue_id
    LEFT JOIN staff s ON s.queue_id = q.queue_id
    LEFT JOIN today t ON t.queue_id = q.queue_id
   WHERE q.tenant_id = p_tenant_id
   ORDER BY q.queue_id
$$;

-- Every operator of the tenant now: state and time in it, the calls he answered since the
-- tenant's midnight with their handle times, and his time by state today from the history.
-- Occupancy = time talking, holding or in wrap-up / time logged in and not in a not-ready pause.
CREATE FUNCTION operator_live_stats(p_tenant_id bigint, p_at timestamptz DEFAULT now())
RETURNS TABLE (operator_id bigint, login text, full_name text, state presence_state, reason text,
               seconds_in_state numeric, current_call_id bigint, calls_today integer, handled integer,
               talk_seconds numeric, hold_seconds numeric, wrap_up_seconds numeric, handle_seconds numeric,
               aht_seconds numeric, logged_in_seconds numeric, not_ready_seconds numeric, busy_seconds numeric,
               occupancy_percent numeric)
LANGUAGE sql STABLE AS $$
  WITH d AS (SELECT r.day_start, r.day_end, least(p_at, r.day_end) AS until FROM report_day(p_tenant_id, p_at) r),
  -- the state each operator was in at midnight, then every change since, up to p_at
  marks AS (
    SELECT h.operator_id, h.state, h.at, h.history_id
      FROM presence_history h, d
     WHERE h.tenant_id = p_tenant_id AND h.at >= d.day_start AND h.at < d.until
    UNION ALL
    SELECT p.operator_id, b.state, d.day_start, b.history_id
      FROM presence p CROSS JOIN d
      CROSS JOIN LATERAL (
        SELECT h.state, h.history_id FROM presence_history h
         WHERE h.operator_id = p.operator_id AND h.at < d.day_start
         ORDER BY h.at DESC, h.history_id DESC LIMIT 1) b
     WHERE p.tenant_id = p_tenant_id),
  spans AS (
    SELECT m.operator_id, m.state,
           extract(epoch FROM coalesce(lead(m.at) OVER (PARTITION BY m.operator_id ORDER BY m.at, m.history_id),
                                       d.until) - m.at) AS secs
      FROM marks m, d),
  times AS (
    SELECT sp.operator_id,
           sum(sp.secs) FILTER (WHERE sp.state <> 'logged_out') AS logged_in,
           sum(sp.secs) FILTER (WHERE sp.state = 'not_ready') AS not_ready,
           sum(sp.secs) FILTER (WHERE sp.state IN ('talking', 'held', 'wrap_up')) AS busy
      FROM spans sp GROUP BY sp.operator_id),
  calls_today AS (SELECT c.* FROM d, report_operator_days(d.day_start, d.day_end, p_tenant_id) c)
  SELECT o.operator_id, o.login, o.full_name, p.state, p.reason,
         round(greatest(extract(epoch FROM p_at - p.since), 0), 3),
         p.current_call_id, coalesce(c.calls_answered, 0), coalesce(c.handled, 0),
         coalesce(c.talk_seconds, 0), coalesce(c.hold_seconds, 0), coalesce(c.wrap_up_seconds, 0),
         coalesce(c.handle_seconds, 0), c.aht_seconds,
         round(coalesce(t.logged_in, 0), 3), round(coalesce(t.not_ready, 0), 3), round(coalesce(t.busy, 0), 3),
         report_percent(t.busy, t.logged_in - coalesce(t.not_ready, 0))
    FROM operators o
    JOIN presence p ON p.operator_id = o.operator_id
    LEFT JOIN times t ON t.operator_id = o.operator_id
    LEFT JOIN calls_today c ON c.operator_id = o.operator_id
   WHERE o.tenant_id = p_tenant_id
   ORDER BY o.operator_id
$$;

GRANT SELECT ON report_call_facts, report_calls_by_hour, report_queues, report_operators, report_queue_operators
  TO switchboard_tenant;
