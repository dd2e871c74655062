"""Cosmos's per-model watcher tasks, run to their end in Airflow's triggerer.

After the one `dbt build`, each model's task only reads its node's outcome from the producer's
XCom. As worker tasks, 34 of them cost a process start each, two at a time on this machine (a
third of a small night); started in the triggerer (`start_from_trigger`) and ended there, they
cost an event-loop poll each. The outcome is cosmos's own (`WatcherTrigger`); this only turns it
into the task's end state, with the node's dbt line in the task log.

The build itself reports to XCom only the nodes a task watches (`WatchedNodesProducer`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.triggers.base import (
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.base import _log_dbt_msg
from cosmos.operators._watcher.state import _log_dbt_event, get_dbt_event_xcom_key
from cosmos.operators._watcher.triggerer import WatcherTrigger
from cosmos.operators.watcher import DbtProducerWatcherOperator

#: The producer is not mapped: its XComs have map index -1.
UNMAPPED = -1


class ModelOutcomeTrigger(WatcherTrigger):
    """Cosmos's watcher trigger for one dbt node, ending the node's task itself."""

    def __init__(
        self,
        model_unique_id: str,
        producer_task_id: str,
        dag_id: str,
        poke_interval: float,
        run_id: str = "",
    ) -> None:
        # the scheduler creates this trigger before the run's id can be templated into it:
        # run() takes it from the task instance the triggerer gives the trigger
        super().__init__(
            model_unique_id=model_unique_id,
            producer_task_id=producer_task_id,
            dag_id=dag_id,
            run_id=run_id,
            map_index=UNMAPPED,
            poke_interval=poke_interval,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "model_unique_id": self.model_unique_id,
                "producer_task_id": self.producer_task_id,
                "dag_id": self.dag_id,
                "poke_interval": self.poke_interval,
                "run_id": self.run_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.task_instance is not None:
            self.run_id = self.task_instance.run_id
        async for event in super().run():
            _log_dbt_event(await self.get_xcom_val(get_dbt_event_xcom_key(self.model_unique_id)))
            status = event.payload.get("status")
            if status == EventStatus.SUCCESS:
                yield TaskSuccessEvent()
            elif status == EventStatus.SKIPPED:
                yield TaskSkippedEvent()
            else:
                self.log.error(
                    "dbt node %s: %s; the producer task %s's log has dbt's error",
                    self.model_unique_id,
                    event.payload.get("reason", "failed"),
                    self.producer_task_id,
                )
                yield TaskFailedEvent()
            return


def start_in_triggerer(watcher: Any) -> None:
    """Make one cosmos watcher task start and end in the triggerer."""
    watcher.start_from_trigger = True
    watcher.start_trigger_args = StartTriggerArgs(
        trigger_cls=f"{__name__}.{ModelOutcomeTrigger.__name__}",
        trigger_kwargs={
            "model_unique_id": watcher.model_unique_id,
            "producer_task_id": watcher.producer_task_id,
            "dag_id": watcher.dag_id,
            "poke_interval": watcher.poke_interval,
        },
        next_method="execute_complete",
    )


#: dbt nodes no task watches (the group renders a task per model and seed only).
UNWATCHED = frozenset({"test", "unit_test"})


class WatchedNodesProducer(DbtProducerWatcherOperator):
    """Cosmos's `dbt build` task, pushing node events to XCom only for the nodes a task watches.

    Cosmos's producer pushes four or five XComs per dbt node (each event, the status, the
    compiled SQL), each a round trip to the API server made under one lock from dbt's threads;
    for the ~300 data tests no task reads them, and they slowed the build by about a third.
    A test's dbt line still goes to the build's task log, so a failing test is named there.
    """

    def _make_parse_callable(self) -> Callable[[str, Any], None]:
        parse = super()._make_parse_callable()

        def parse_watched(line: str, extra_kwargs: Any) -> None:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {}
            node = event.get("data", {}).get("node_info") or {}
            if node.get("resource_type") in UNWATCHED:
                _log_dbt_msg(event)
            else:
                parse(line, extra_kwargs)

        return parse_watched

    def calculate_openlineage_events_completes(self, *args: Any, **kwargs: Any) -> bool:
        """Skip turning the build's artifacts into OpenLineage events (an import and a pass over
        the manifest, about a second of the build's task): this producer emits no datasets, and
        no OpenLineage provider is installed to send them."""
        return False


def report_watched_nodes_only(producer: DbtProducerWatcherOperator) -> None:
    """Make the group's producer a `WatchedNodesProducer` (cosmos builds it, of its own class)."""
    producer.__class__ = WatchedNodesProducer
