CREATE TABLE users (x INT);
