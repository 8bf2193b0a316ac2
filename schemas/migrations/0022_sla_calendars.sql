-- SLA clocks (orders.sla): each tier's targets run on a business-hours calendar and warn a set
-- number of (calendar) hours before the deadline. The top tiers run around the clock, the lower
-- ones on business days. Calendars are in their own time zone (sites carry none yet); public
-- holidays are not modelled.

CREATE TABLE sla_calendars (
    calendar    text PRIMARY KEY,
    timezone    text NOT NULL DEFAULT 'UTC',
    weekdays    smallint[] NOT NULL CHECK (weekdays <@ '{1,2,3,4,5,6,7}' AND cardinality(weekdays) > 0), -- ISO, 1 = Monday
    day_start_h real NOT NULL CHECK (day_start_h >= 0 AND day_start_h < 24),
    day_end_h   real NOT NULL CHECK (day_end_h > day_start_h AND day_end_h <= 24),
    description text NOT NULL DEFAULT ''
);
INSERT INTO sla_calendars (calendar, timezone, weekdays, day_start_h, day_end_h, description) VALUES
    ('24x7', 'UTC', '{1,2,3,4,5,6,7}', 0, 24, 'around the clock'),
    ('business', 'UTC', '{1,2,3,4,5}', 8, 18, 'Monday to Friday, 08:00-18:00');

ALTER TABLE sla_tiers
    ADD COLUMN calendar text NOT NULL DEFAULT '24x7' REFERENCES sla_calendars,
    ADD COLUMN response_warning_h real CHECK (response_warning_h > 0),  -- warn this long before the response deadline
    ADD COLUMN restore_warning_h real CHECK (restore_warning_h > 0);    -- ... before the restore deadline
UPDATE sla_tiers SET calendar = x.calendar, response_warning_h = x.rw, restore_warning_h = x.sw
FROM (VALUES ('platinum', '24x7', 1, 2), ('gold', '24x7', 2, 6),
             ('silver', 'business', 4, 8), ('bronze', 'business', 8, 24)) AS x(tier, calendar, rw, sw)
WHERE sla_tiers.tier = x.tier;
