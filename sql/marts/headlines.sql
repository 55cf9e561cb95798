-- The headline figures over every item: one row, plotted across runs in the Dagster UI.
-- depends_on: marts.item_flow, marts.approval_waits, marts.decision_waits
create or replace view marts.headlines as
with finished as (
    select
        avg(handoffs) as handoffs_per_item,
        sum(active_s) / nullif(sum(active_s) + sum(waiting_s), 0) as flow_efficiency
    from marts.item_flow
    where finished_at is not null
),

approval as (
    select quantile_cont(calendar_s, 0.85) / 3600 as approval_wait_p85_h
    from marts.approval_waits
    where not is_open
),

decision as (
    select quantile_cont(calendar_s, 0.85) / 3600 as decision_latency_p85_h
    from marts.decision_waits
    where not is_open
),

items as (select count(*) as items from marts.item_flow)

select
    finished.handoffs_per_item,
    approval.approval_wait_p85_h,
    decision.decision_latency_p85_h,
    finished.flow_efficiency,
    items.items
from finished, approval, decision, items
;

comment on view marts.headlines is 'Headline flow figures over every item (one row).';
comment on column marts.headlines.handoffs_per_item is 'Mean handoffs of the finished items.';
comment on column marts.headlines.approval_wait_p85_h is '85th percentile of closed approval waits, calendar hours.';
comment on column marts.headlines.decision_latency_p85_h is '85th percentile of closed decision waits, calendar hours.';
comment on column marts.headlines.flow_efficiency is 'Sum of active time over sum of active and waiting time, finished items.';
comment on column marts.headlines.items is 'Items in the warehouse.';
