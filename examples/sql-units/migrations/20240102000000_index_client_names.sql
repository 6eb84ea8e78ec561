-- no-transaction
-- author: bo
-- Each statement runs on its own: on PostgreSQL this is where CREATE INDEX CONCURRENTLY goes.
CREATE INDEX clients_by_name ON clients (name);
CREATE INDEX clients_by_country ON clients (country);
