-- Field service: where sites and technicians are, what technicians can do and when, the parts
-- a repair needs and where they are stocked, and the plans the scheduler makes.
-- Owners: scheduling.technicians (technicians, skills, absences), scheduling.parts (depots,
-- parts, mode parts, stock, restocks, order part needs), scheduling.plans (plans, visits,
-- unscheduled orders, pins). Site coordinates are written with the installed base.

ALTER TABLE sites ADD COLUMN IF NOT EXISTS lat double precision CHECK (lat BETWEEN -90 AND 90);
ALTER TABLE sites ADD COLUMN IF NOT EXISTS lon double precision CHECK (lon BETWEEN -180 AND 180);

CREATE TABLE depots (
    depot_id    text PRIMARY KEY,
    name        text NOT NULL,
    region      text NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180)
);

CREATE TABLE technicians (
    technician_id text PRIMARY KEY CHECK (technician_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text NOT NULL,
    region      text NOT NULL,                        -- territory
    depot_id    text REFERENCES depots,               -- where the technician takes parts from
    home_lat    double precision NOT NULL CHECK (home_lat BETWEEN -90 AND 90),
    home_lon    double precision NOT NULL CHECK (home_lon BETWEEN -180 AND 180),
    -- weekly shift calendar in UTC: ISO weekdays (1 = Monday) and daily hours
    workdays    smallint[] NOT NULL DEFAULT '{1,2,3,4,5}',
    shift_start time NOT NULL DEFAULT '08:00',
    shift_end   time NOT NULL DEFAULT '17:00',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (shift_start < shift_end),
    CHECK (workdays <@ '{1,2,3,4,5,6,7}'::smallint[])
);

-- Skill per product model and failure mode, with a proficiency level (1 basic .. 3 expert).
CREATE TABLE technician_skills (
    technician_id text NOT NULL REFERENCES technicians ON DELETE CASCADE,
    model_id    text NOT NULL,
    mode        text NOT NULL,
    level       smallint NOT NULL CHECK (level BETWEEN 1 AND 3),
    PRIMARY KEY (technician_id, model_id, mode),
    FOREIGN KEY (model_id, mode) REFERENCES failure_modes ON DELETE CASCADE
);

CREATE TABLE technician_absences (
    id          bigserial PRIMARY KEY,
    technician_id text NOT NULL REFERENCES technicians ON DELETE CASCADE,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    CHECK (starts_at < ends_at)
);
CREATE INDEX technician_absences_idx ON technician_absences (technician_id, ends_at);

-- What a repair of a failure mode needs: the skill level and the parts.
CREATE TABLE mode_requirements (
    model_id    text NOT NULL,
    mode        text NOT NULL,
    skill_level smallint NOT NULL DEFAULT 1 CHECK (skill_level BETWEEN 1 AND 3),
    PRIMARY KEY (model_id, mode),
    FOREIGN KEY (model_id, mode) REFERENCES failure_modes ON DELETE CASCADE
);

CREATE TABLE parts (
    part_id     text PRIMARY KEY,
    name        text NOT NULL,
    restock_lead_h real NOT NULL CHECK (restock_lead_h >= 0)   -- order to arrival at a depot
);

CREATE TABLE mode_parts (
    model_id    text NOT NULL,
    mode        text NOT NULL,
    part_id     text NOT NULL REFERENCES parts,
    quantity    integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    PRIMARY KEY (model_id, mode, part_id),
    FOREIGN KEY (model_id, mode) REFERENCES failure_modes ON DELETE CASCADE
);

CREATE TABLE part_stock (
    depot_id    text NOT NULL REFERENCES depots ON DELETE CASCADE,
    part_id     text NOT NULL REFERENCES parts,
    on_hand     integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reorder_level integer NOT NULL DEFAULT 0 CHECK (reorder_level >= 0),
    PRIMARY KEY (depot_id, part_id)
);

-- Parts set aside for an order (consumed when the visit is completed, released on cancel),
-- and restocks on their way to a depot.
CREATE TABLE part_allocations (
    order_id    bigint NOT NULL REFERENCES service_orders ON DELETE CASCADE,
    depot_id    text NOT NULL REFERENCES depots,
    part_id     text NOT NULL REFERENCES parts,
    quantity    integer NOT NULL CHECK (quantity > 0),
    state       text NOT NULL DEFAULT 'reserved' CHECK (state IN ('waiting', 'reserved', 'consumed', 'released')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, part_id)
);
CREATE INDEX part_allocations_state_idx ON part_allocations (state, depot_id, part_id);

CREATE TABLE part_restocks (
    id          bigserial PRIMARY KEY,
    depot_id    text NOT NULL REFERENCES depots,
    part_id     text NOT NULL REFERENCES parts,
    quantity    integer NOT NULL CHECK (quantity > 0),
    ordered_at  timestamptz NOT NULL,
    arrives_at  timestamptz NOT NULL,
    received_at timestamptz,
    CHECK (arrives_at >= ordered_at)
);
CREATE INDEX part_restocks_open_idx ON part_restocks (arrives_at) WHERE received_at IS NULL;

-- Plans: each run of the planner. A visit's latest plan is the schedule in force.
CREATE TABLE plans (
    plan_id     bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    planned_at  timestamptz NOT NULL,             -- the planner's "now" (simulated time in tests)
    horizon_start timestamptz NOT NULL,
    horizon_end timestamptz NOT NULL,
    actor       text NOT NULL DEFAULT 'system',
    regions     text[],                           -- the territories planned (NULL: all)
    solver_seconds real NOT NULL,
    km          real NOT NULL,
    summary     jsonb NOT NULL DEFAULT '{}',
    CHECK (horizon_start < horizon_end)
);

CREATE TABLE plan_visits (
    plan_id     bigint NOT NULL REFERENCES plans ON DELETE CASCADE,
    order_id    bigint NOT NULL REFERENCES service_orders ON DELETE CASCADE,
    technician_id text NOT NULL REFERENCES technicians,
    seq         integer NOT NULL,
    arrive_at   timestamptz NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    travel_km   real NOT NULL,
    travel_min  real NOT NULL,
    pinned      boolean NOT NULL DEFAULT false,
    on_time     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (plan_id, order_id)
);
CREATE INDEX plan_visits_tech_idx ON plan_visits (plan_id, technician_id, starts_at);

CREATE TABLE plan_unscheduled (
    plan_id     bigint NOT NULL REFERENCES plans ON DELETE CASCADE,
    order_id    bigint NOT NULL REFERENCES service_orders ON DELETE CASCADE,
    reason      text NOT NULL,
    PRIMARY KEY (plan_id, order_id)
);

-- A planner's pin: this order goes to this technician (at this time, if given).
CREATE TABLE visit_pins (
    order_id    bigint PRIMARY KEY REFERENCES service_orders ON DELETE CASCADE,
    technician_id text NOT NULL REFERENCES technicians ON DELETE CASCADE,
    starts_at   timestamptz,
    pinned_by   text NOT NULL DEFAULT 'planner',
    pinned_at   timestamptz NOT NULL DEFAULT now()
);
