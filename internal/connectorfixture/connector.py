"""socflow's connector fixture: a small EXTERNAL_IMPORT connector built on pycti.

It is configured only by environment, exactly as socflow configures connectors:
OPENCTI_URL, OPENCTI_TOKEN, CONNECTOR_ID, CONNECTOR_NAME, CONNECTOR_TYPE,
CONNECTOR_SCOPE and CONNECTOR_LOG_LEVEL (read by pycti's OpenCTIConnectorHelper),
plus its own settings:

  FIXTURE_INTERVAL       ISO 8601 duration between runs (default PT1H)
  FIXTURE_IDENTITY_NAME  name of the organization it imports (default
                         "socflow connector fixture")

Like a real connector it registers at start, pings from pycti's ping thread, and
runs on a schedule until it is stopped. It installs no signal handler: SIGTERM
ends it as it ends any pycti connector, and pycti's own exception hook answers a
failure (platform unreachable, registration refused) by sending the process
SIGTERM, so a supervisor sees a failed process and restarts it.
Each run records the run in the connector state and pings at once (force_ping),
so the platform sees the state change without waiting for the 40 s ping. The
first run imports one STIX bundle holding one organization identity, through a
work, into the connector's push queue; the state remembers it, so a restarted
connector does not send it again.
"""

import datetime

import stix2
from pycti import Identity, OpenCTIConnectorHelper, get_config_variable


class FixtureConnector:
    """The connector: pycti's helper plus one scheduled process."""

    def __init__(self):
        self.helper = OpenCTIConnectorHelper({})
        self.interval = get_config_variable(
            "FIXTURE_INTERVAL", ["fixture", "interval"], {}, default="PT1H"
        )
        self.identity_name = get_config_variable(
            "FIXTURE_IDENTITY_NAME",
            ["fixture", "identity_name"],
            {},
            default="socflow connector fixture",
        )

    def bundle(self):
        """One organization identity with pycti's deterministic STIX id."""
        identity = stix2.Identity(
            id=Identity.generate_id(self.identity_name, "organization"),
            name=self.identity_name,
            identity_class="organization",
            description="Imported by socflow's connector fixture.",
            allow_custom=True,
        )
        return self.helper.stix2_create_bundle([identity])

    def process(self):
        """One run: send the bundle once, record the run, ping."""
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = self.helper.get_state() or {}
        if not state.get("bundle_sent_at"):
            work_id = self.helper.api.work.initiate_work(
                self.helper.connect_id, "socflow fixture import " + now
            )
            self.helper.send_stix2_bundle(self.bundle(), work_id=work_id)
            self.helper.api.work.to_processed(work_id, "one identity sent")
            state["bundle_sent_at"] = now
            self.helper.connector_logger.info(
                "Bundle sent", {"work_id": work_id, "identity": self.identity_name}
            )
        state["last_run"] = now
        state["runs"] = int(state.get("runs", 0)) + 1
        self.helper.set_state(state)
        self.helper.force_ping()

    def run(self):
        """Run now, then every FIXTURE_INTERVAL, until stopped."""
        self.helper.schedule_iso(message_callback=self.process, duration_period=self.interval)


if __name__ == "__main__":
    FixtureConnector().run()
