-- The config schema, rebuilt from flowlens.toml on every model run (pipelines/warehouse.py fills it).
create schema if not exists config;
create or replace table config.run (as_of timestamptz);
create or replace table config.status_patterns (ordinal integer, pattern varchar, state varchar);
create or replace table config.status_names (project varchar, status_name varchar, state varchar);
create or replace table config.github_labels (label varchar, state varchar);
create or replace table config.decision_labels (label varchar);
create or replace table config.bots (name varchar);
create or replace table config.identities (jira varchar, github varchar);
create or replace table config.teams (team varchar, name varchar, calendar varchar, github_team varchar);
create or replace table config.project_teams (source varchar, project varchar, team varchar);
create or replace table config.memberships (person_id varchar, team varchar, valid_from timestamptz, valid_to timestamptz);
create or replace table config.calendars (calendar varchar, timezone varchar, workdays integer[], day_start time, day_end time);
create or replace table config.holidays (calendar varchar, holiday date);
create or replace table config.settings (key varchar, value varchar);
