-- The raw layer: payloads as fetched, one table per source stream, plus load bookkeeping.
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists core;
create schema if not exists marts;
create schema if not exists config;

create table if not exists raw.loaded_files (
    path varchar primary key,  -- relative to the landing root
    source varchar, partition varchar, extract_id varchar, stream varchar, loaded_at timestamptz
);
create table if not exists raw.extracts (
    source varchar, partition varchar, extract_id varchar, complete boolean,
    manifest json, loaded_at timestamptz,
    primary key (source, partition, extract_id)
);
create table if not exists raw.cursors (
    source varchar, partition varchar, cursor json, extract_id varchar, updated_at timestamptz,
    primary key (source, partition)
);

create table if not exists raw.jira__issues (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__changelogs (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__approvals (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__remote_links (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__statuses (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__fields (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.jira__issue_ids (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__pull_requests (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__timeline_events (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__issues (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__repositories (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__teams (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
create table if not exists raw.github__team_members (id varchar, updated varchar, partition varchar, extract_id varchar, loaded_at timestamptz, payload json);
