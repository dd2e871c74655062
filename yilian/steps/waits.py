"""Waits that live in Airflow's triggerer: a source day's delivery, the facility master's day.

A sensor in a worker costs a process per poke and, in reschedule mode, polls no faster than
Airflow 3.3 can bear: at a 5 s poke it marked the sensor failed whenever the next poke was
queued before the scheduler had processed the last one (apache/airflow#71172), so the night
waited 30 s for a master loaded seconds after the first poke. These tasks instead start in the
triggerer (`start_from_trigger`), poll every `POLL_SECONDS` in its event loop, and end there
(`TaskSuccessEvent` / `TaskFailedEvent`): no worker process, no executor slot, no pool slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)

from yilian.steps import NO_PARTITION_KEY, ingest

POLL_SECONDS = 2.0
#: A wait that cannot end gives up long before the next night's run.
WAIT_TIMEOUT = timedelta(hours=8)
#: What a wait can wait for: (source, day) -> ready? A check may raise DataQualityBlocked.
CHECKS = {
    "delivery": ingest.delivered,
    "facility_master": lambda _source, ds: ingest.facility_master_loaded(ds),
}


class DayReadyTrigger(BaseTrigger):
    """Poll one check for a source's business day; end the task when it is ready, fail it when
    the check says waiting cannot help (a blocked master day)."""

    def __init__(
        self, check: str, source_name: str, ds: str, poll_seconds: float = POLL_SECONDS
    ) -> None:
        super().__init__()
        self.check = check
        self.source_name = source_name
        self.ds = ds
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {
            "check": self.check,
            "source_name": self.source_name,
            "ds": self.ds,
            "poll_seconds": self.poll_seconds,
        }
        return (f"{__name__}.{type(self).__name__}", kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            day = date.fromisoformat(self.ds)
        except ValueError:
            self.log.error("%s", NO_PARTITION_KEY)
            yield TaskFailedEvent()
            return
        ready = CHECKS[self.check]
        self.log.info("waiting for %s of %s %s", self.check, self.source_name, day)
        while True:
            try:
                done = await asyncio.to_thread(ready, self.source_name, day)
            except ingest.DataQualityBlocked as exc:
                self.log.error("%s", exc)
                yield TaskFailedEvent()
                return
            if done:
                self.log.info("%s of %s %s: ready", self.check, self.source_name, day)
                yield TaskSuccessEvent()
                return
            await asyncio.sleep(self.poll_seconds)


class WaitForDay(BaseOperator):
    """Wait, in the triggerer, until `check` says the run's business day is ready."""

    template_fields = ("ds",)
    start_trigger_args = StartTriggerArgs(
        trigger_cls=f"{__name__}.{DayReadyTrigger.__name__}",
        next_method="execute_complete",
        timeout=WAIT_TIMEOUT,
    )
    start_from_trigger = True

    def __init__(self, *, check: str, source_name: str, **kwargs: Any) -> None:
        super().__init__(retries=0, **kwargs)
        self.check, self.source_name = check, source_name
        self.ds = "{{ partition_key }}"
        # rendered in the triggerer: `ds` is one of template_fields
        self.start_trigger_args = dataclasses.replace(
            self.start_trigger_args,
            trigger_kwargs={"check": check, "source_name": source_name, "ds": self.ds},
        )

    def execute(self, context: Any) -> None:
        """The worker path (`airflow tasks test`, `dag.test`): defer to the same trigger."""
        self.defer(
            trigger=DayReadyTrigger(self.check, self.source_name, self.ds),
            method_name="execute_complete",
            timeout=WAIT_TIMEOUT,
        )

    def execute_complete(self, context: Any, event: Any = None) -> None:
        """Nothing to do: the trigger ends the task itself."""
