-- pick_call runs every time an operator becomes ready, and at a call centre's usual load nobody
-- is waiting: it now returns at once when no call waits in the operator's tenant, before it
-- locks his presence row (a WAL record) and walks the waiting list (bench: 195,911 -> 117,771
-- instructions for a pick_call that finds nothing; ~1.25 of them per routed call in
-- switchboard-bench; figures in docs/benchmarks.md). The same answers: a call that starts waiting
-- meanwhile was not visible to the walk either, and the router's re-check of waiting calls finds
-- him for it. An administrator's own pick_call (one that is no longer 0015's) is kept as it is.
DO $$
BEGIN
  IF (SELECT md5(p.prosrc) FROM pg_proc p WHERE p.oid = 'pick_call(bigint, integer)'::regprocedure)
     = 'c3aa8c199ebec141411b72f44e93275c' THEN  -- 0015's body
    CREATE OR REPLACE FUNCTION pick_call(p_operator_id bigint, p_reserve_seconds integer DEFAULT 10)
    RETURNS TABLE (call_id bigint, queue_id bigint, device text) LANGUAGE plpgsql AS $f$
    #variable_conflict use_column
    DECLARE
      me presence;
      v_candidate bigint;
      v_call bigint;
      v_queue bigint;
      v_device text;
      v_since timestamptz;
    BEGIN
      -- nobody waiting in his tenant (an operator's usual 'ready'): no row lock, no walk
      IF NOT EXISTS (SELECT 1 FROM waiting_calls wc
                      WHERE wc.tenant_id = (SELECT p.tenant_id FROM presence p WHERE p.operator_id = p_operator_id)) THEN
        RETURN;
      END IF;
      SELECT * INTO me FROM presence p WHERE p.operator_id = p_operator_id AND p.state = 'ready' FOR UPDATE SKIP LOCKED;
      IF NOT FOUND THEN
        RETURN;
      END IF;
      FOR v_candidate IN
        SELECT wc.call_id FROM waiting_calls wc
         WHERE wc.tenant_id = me.tenant_id
         ORDER BY wc.priority DESC, wc.waiting_since, wc.call_id
      LOOP
        CONTINUE WHEN NOT call_accepts_operator(v_candidate, p_operator_id);
        -- the call leaves the waiting list and the operator is reserved in one statement; a call
        -- another transaction holds is skipped
        WITH chosen AS (
          SELECT wc.call_id FROM waiting_calls wc WHERE wc.call_id = v_candidate FOR UPDATE SKIP LOCKED),
        taken AS (
          DELETE FROM waiting_calls wc USING chosen c WHERE wc.call_id = c.call_id
          RETURNING wc.call_id, wc.queue_id, wc.waiting_since)
        UPDATE presence p
           SET state = 'reserved', current_call_id = t.call_id, since = now(),
               reserved_until = now() + make_interval(secs => p_reserve_seconds)
          FROM taken t
         WHERE p.operator_id = p_operator_id
        RETURNING t.call_id, t.queue_id, p.device, t.waiting_since INTO v_call, v_queue, v_device, v_since;
        EXIT WHEN v_call IS NOT NULL;
      END LOOP;
      IF v_call IS NULL THEN
        RETURN;
      END IF;
      UPDATE calls c SET final_queue_id = v_queue WHERE c.call_id = v_call;
      INSERT INTO call_events (tenant_id, call_id, kind, operator_id, queue_id, device, detail)
      VALUES (me.tenant_id, v_call, 'reserved', p_operator_id, v_queue, v_device,
              jsonb_build_object('strategy', 'operator_ready', 'waited_seconds', round(extract(epoch FROM now() - v_since), 3)));
      RETURN QUERY SELECT v_call, v_queue, v_device;
    END $f$;
  ELSE
    RAISE NOTICE 'pick_call(bigint, integer) has been replaced by an administrator: kept as it is';
  END IF;
END $$;
