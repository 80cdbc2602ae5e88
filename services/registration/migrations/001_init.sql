CREATE TABLE editions (
    id               text        PRIMARY KEY,
    region           text        NOT NULL,
    name             text        NOT NULL,
    signup_deadline  timestamptz NOT NULL,
    starts_on        date        NOT NULL,
    ends_on          date        NOT NULL,
    languages        text[]      NOT NULL,
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offers (
    id           text        PRIMARY KEY,
    edition_id   text        NOT NULL REFERENCES editions (id),
    host_org     text        NOT NULL,
    title        text        NOT NULL,
    date         date        NOT NULL,
    capacity     int         NOT NULL CHECK (capacity >= 1),
    max_per_org  int         CHECK (max_per_org >= 1),
    format       text        NOT NULL,
    location     text        NOT NULL DEFAULT '',
    status       text        NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offers_by_edition ON offers (edition_id);

CREATE TABLE signups (
    id            text        PRIMARY KEY,
    edition_id    text        NOT NULL REFERENCES editions (id),
    org           text        NOT NULL,
    name          text        NOT NULL,
    email         text        NOT NULL,
    language      text        NOT NULL,
    choices       text[]      NOT NULL,
    available     date[],
    max_visits    int         NOT NULL DEFAULT 1,
    signed_up_at  timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'withdrawn'))
);
-- One active sign-up per e-mail address and edition.
CREATE UNIQUE INDEX signups_one_per_email ON signups (edition_id, lower(email)) WHERE status = 'submitted';
