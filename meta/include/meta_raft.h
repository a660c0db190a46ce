/*
 * meta_raft: read-only access to a group's libraft instance, for the node's
 * cluster map (voters, spares, term, commit index). Kept out of meta.h: only
 * the node daemon needs it. Valid while the group is open; read it on the
 * loop, never change it.
 */
#ifndef META_RAFT_H
#define META_RAFT_H

#include <raft.h>

#include "meta.h"

const struct raft *meta_group_raft(const struct meta_group *group);

#endif /* META_RAFT_H */
