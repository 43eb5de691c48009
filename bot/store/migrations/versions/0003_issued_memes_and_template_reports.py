"""issued memes and template reports (the "Report" button under a meme)

Revision ID: 0003
Revises: 0002_named_faces
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002_named_faces'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('issued_memes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('template', sa.String(length=200), nullable=False),
    sa.Column('scope_key', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_issued_memes')),
    sa.UniqueConstraint('job_id', name=op.f('uq_issued_memes_job_id'))
    )
    with op.batch_alter_table('issued_memes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issued_memes_created_at'), ['created_at'], unique=False)

    op.create_table('template_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=64), nullable=False),
    sa.Column('template', sa.String(length=200), nullable=False),
    sa.Column('scope_key', sa.String(length=100), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_template_reports_reporter_id'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_reports')),
    sa.UniqueConstraint('job_id', 'reporter_id', name=op.f('uq_template_reports_job_id'))
    )
    with op.batch_alter_table('template_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_template_reports_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_template_reports_scope_key'), ['scope_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('template_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_template_reports_scope_key'))
        batch_op.drop_index(batch_op.f('ix_template_reports_reporter_id'))

    op.drop_table('template_reports')
    with op.batch_alter_table('issued_memes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issued_memes_created_at'))

    op.drop_table('issued_memes')
