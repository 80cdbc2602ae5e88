-- A new kind of message: a seat on the waiting list is offered (SeatOffered).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('assigned', 'waitlisted', 'unmatched', 'seat_offered', 'generic'));
