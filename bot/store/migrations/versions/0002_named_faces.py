"""saved faces have names people choose: the one face saved before is named "me"

Revision ID: 0002_named_faces
Revises: 0001
"""

from alembic import op

revision = '0002_named_faces'
down_revision = '0001'
branch_labels = None
depends_on = None

# Before, every saved face was named "default"; "me" is now the name a face gets when none
# is given (and the one a swap without a selfie uses). The schema itself is unchanged.
_RENAME = """UPDATE saved_faces SET name = '{new}'
WHERE name = '{old}' AND NOT EXISTS (
    SELECT 1 FROM saved_faces AS other WHERE other.user_id = saved_faces.user_id AND other.name = '{new}')"""


def upgrade() -> None:
    op.execute(_RENAME.format(old="default", new="me"))


def downgrade() -> None:
    op.execute(_RENAME.format(old="me", new="default"))
