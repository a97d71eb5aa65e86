"""SQLite queues new events for the projection in a trigger, so one statement stores and queues them

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL queues them in the statement that inserts them (a CTE), which a trigger would only slow down.
TRIGGER = """
CREATE TRIGGER events_queue_for_projection AFTER INSERT ON events
BEGIN
    INSERT INTO projection_queue (id) VALUES (NEW.id);
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(TRIGGER)


def downgrade() -> None:
    # Revision 0004's writer queues new events itself.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_queue_for_projection")
