"""collections, faces, users, index events, idempotency

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 00:54:55.167696
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection_id', sa.String(length=255), nullable=False),
    sa.Column('face_model_version', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('face_count', sa.BigInteger(), nullable=False),
    sa.Column('user_count', sa.BigInteger(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('collection_id'),
    sqlite_autoincrement=True
    )
    op.create_table('idempotency_tokens',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('operation', 'token'),
    sqlite_autoincrement=True
    )
    op.create_table('index_events',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection_pk', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target_pk', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sqlite_autoincrement=True
    )
    op.create_index('ix_index_events_collection_pk_pk', 'index_events', ['collection_pk', 'pk'], unique=False)
    op.create_table('indexed_images',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('image_sha256', sa.String(length=64), nullable=False),
    sa.Column('external_key', sa.String(length=255), nullable=False),
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['collection_pk'], ['collections.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('collection_pk', 'image_sha256', 'external_key'),
    sqlite_autoincrement=True
    )
    op.create_table('users',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('collection_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['collection_pk'], ['collections.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('collection_pk', 'user_id'),
    sqlite_autoincrement=True
    )
    op.create_table('faces',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('face_id', sa.String(length=36), nullable=False),
    sa.Column('collection_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('image_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('external_image_id', sa.String(length=255), nullable=True),
    sa.Column('user_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('left', sa.Float(), nullable=False),
    sa.Column('top', sa.Float(), nullable=False),
    sa.Column('width', sa.Float(), nullable=False),
    sa.Column('height', sa.Float(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['collection_pk'], ['collections.pk'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_pk'], ['indexed_images.pk'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_pk'], ['users.pk'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('face_id'),
    sqlite_autoincrement=True
    )
    op.create_index('ix_faces_collection_pk_pk', 'faces', ['collection_pk', 'pk'], unique=False)
    op.create_index('ix_faces_image_pk', 'faces', ['image_pk'], unique=False)
    op.create_index('ix_faces_user_pk', 'faces', ['user_pk'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_faces_user_pk', table_name='faces')
    op.drop_index('ix_faces_image_pk', table_name='faces')
    op.drop_index('ix_faces_collection_pk_pk', table_name='faces')
    op.drop_table('faces')
    op.drop_table('users')
    op.drop_table('indexed_images')
    op.drop_index('ix_index_events_collection_pk_pk', table_name='index_events')
    op.drop_table('index_events')
    op.drop_table('idempotency_tokens')
    op.drop_table('collections')
