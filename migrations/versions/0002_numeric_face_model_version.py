"""FaceModelVersion as Rekognition writes it: a number ("1.0"), not the model's name

Revision ID: 0002
Revises: 0001
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The model's name (what facebank stored before) -> its FaceModelVersion.
NUMBERS = {"facenet-20170512": "1.0", "facenet-vggface2-20180402": "2.0"}


def _rename(mapping: dict[str, str]) -> None:
    for old, new in mapping.items():
        op.execute(
            f"UPDATE collections SET face_model_version = '{new}' "
            f"WHERE face_model_version = '{old}'"
        )
        op.execute(f"UPDATE faces SET model_version = '{new}' WHERE model_version = '{old}'")


def upgrade() -> None:
    _rename(NUMBERS)


def downgrade() -> None:
    _rename({new: old for old, new in NUMBERS.items()})
