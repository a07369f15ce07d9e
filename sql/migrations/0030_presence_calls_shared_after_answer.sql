-- A call is offered (reserved, ringing) to one operator at a time; once answered it may be at
-- two: after a transfer the first operator is in wrap-up while the specialist talks, and in a
-- conference both talk. The uniqueness guards the offer only (routing never double-books).
DROP INDEX presence_one_operator_per_call;
CREATE UNIQUE INDEX presence_one_operator_per_call ON presence (current_call_id)
  WHERE current_call_id IS NOT NULL AND state IN ('reserved', 'ringing');
