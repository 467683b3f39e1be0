ALTER TABLE jobs DROP COLUMN locations;
