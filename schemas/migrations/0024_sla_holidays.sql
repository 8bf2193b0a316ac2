-- Public holidays of an SLA calendar: no working hours on these local days (orders.sla.Calendar).
-- Written by orders.sla.update_calendar (PATCH /api/v1/sla/calendars/{calendar}).
CREATE TABLE sla_holidays (
    calendar    text NOT NULL REFERENCES sla_calendars ON DELETE CASCADE ON UPDATE CASCADE,
    day         date NOT NULL,
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    PRIMARY KEY (calendar, day)
);
