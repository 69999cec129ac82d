//! `meshc diff`: what a change does to traffic, host by host, for review.
//!
//! Both sides are read into one [`model::Model`] from a loaded table (a policy directory is
//! compiled in memory first), so a directory and the artifact built from it are equal, and a
//! change that does not change behaviour (reformatting, renaming files, `weight: 50/50` to
//! `1/1`) shows nothing.
//!
//! Identity: a host is its VirtualService (`namespace/name`). Within a host, a route is found
//! on the other side by its name when it has one; an unnamed route by its match (the first
//! unnamed route with a match pairs with the first such route on the other side, and so on),
//! then, for unnamed routes left over, by its rule index (a changed match). Anything else is
//! added or removed. Since Istio takes the first route that matches, a paired route whose
//! place in the first-match order changed relative to the others is reported as moved: the
//! moved routes are those outside a longest run kept in order, so one insertion does not make
//! every later route "moved". Clusters are identified by name
//! (`outbound|port|subset|host`).

pub mod git;
pub mod model;
mod render;

use std::collections::BTreeMap;

pub use render::{OutputFormat, render};

use model::{Aspect, Cluster, Host, Model, Route};

/// What happened to a host, route or cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Added,
    Removed,
    Changed,
    /// Only its place in the first-match order changed.
    Moved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
            Status::Moved => "moved",
        }
    }

    /// The marker of human output: `+`, `-`, `~`, `>`.
    pub fn marker(self) -> char {
        match self {
            Status::Added => '+',
            Status::Removed => '-',
            Status::Changed => '~',
            Status::Moved => '>',
        }
    }
}

/// One aspect that differs between the sides.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub field: &'static str,
    pub old: Aspect,
    pub new: Aspect,
}

#[derive(Clone, Debug)]
pub struct RouteDiff {
    /// `` `jason` (rule 0) `` or `rule 2`, as on the new side when the route is there.
    pub label: String,
    pub status: Status,
    /// Positions in the host's first-match order, from 0.
    pub old_position: Option<usize>,
    pub new_position: Option<usize>,
    /// Its place in the first-match order changed.
    pub moved: bool,
    pub changes: Vec<Change>,
    pub old: Option<Route>,
    pub new: Option<Route>,
}

#[derive(Clone, Debug)]
pub struct HostDiff {
    /// `namespace/name` of the VirtualService.
    pub name: String,
    /// The hosts it names (`reviews`).
    pub title: String,
    pub status: Status,
    pub changes: Vec<Change>,
    pub routes: Vec<RouteDiff>,
}

#[derive(Clone, Debug)]
pub struct ClusterDiff {
    pub name: String,
    pub status: Status,
    /// For an added or removed cluster: endpoints and load balancer.
    pub summary: String,
    pub changes: Vec<Change>,
}

/// Everything that differs, hosts and clusters sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub hosts: Vec<HostDiff>,
    pub clusters: Vec<ClusterDiff>,
}

/// Counts for the summary line and the json `summary` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub hosts_added: usize,
    pub hosts_removed: usize,
    pub hosts_changed: usize,
    pub routes_added: usize,
    pub routes_removed: usize,
    pub routes_changed: usize,
    pub routes_moved: usize,
    pub clusters_added: usize,
    pub clusters_removed: usize,
    pub clusters_changed: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.clusters.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for h in &self.hosts {
            match h.status {
                Status::Added => c.hosts_added += 1,
                Status::Removed => c.hosts_removed += 1,
                _ => c.hosts_changed += 1,
            }
            for r in &h.routes {
                match r.status {
                    Status::Added => c.routes_added += 1,
                    Status::Removed => c.routes_removed += 1,
                    Status::Changed => c.routes_changed += 1,
                    Status::Moved => c.routes_moved += 1,
                }
            }
        }
        for cl in &self.clusters {
            match cl.status {
                Status::Added => c.clusters_added += 1,
                Status::Removed => c.clusters_removed += 1,
                _ => c.clusters_changed += 1,
            }
        }
        c
    }
}

/// Compares two models.
pub fn diff(old: &Model, new: &Model) -> Diff {
    let mut hosts: BTreeMap<&str, (Option<&Host>, Option<&Host>)> = BTreeMap::new();
    for h in &old.hosts {
        hosts.entry(&h.name).or_default().0 = Some(h);
    }
    for h in &new.hosts {
        hosts.entry(&h.name).or_default().1 = Some(h);
    }
    let hosts = hosts
        .into_values()
        .filter_map(|(o, n)| diff_host(o, n))
        .collect();

    let mut clusters: BTreeMap<&str, (Option<&Cluster>, Option<&Cluster>)> = BTreeMap::new();
    for c in &old.clusters {
        clusters.entry(&c.name).or_default().0 = Some(c);
    }
    for c in &new.clusters {
        clusters.entry(&c.name).or_default().1 = Some(c);
    }
    let clusters = clusters
        .into_values()
        .filter_map(|pair| match pair {
            (Some(o), Some(n)) => {
                let changes = changes(o.aspects(), n.aspects());
                (!changes.is_empty()).then(|| ClusterDiff {
                    name: n.name.clone(),
                    status: Status::Changed,
                    summary: String::new(),
                    changes,
                })
            }
            (Some(c), None) | (None, Some(c)) => Some(ClusterDiff {
                name: c.name.clone(),
                status: if pair.0.is_some() {
                    Status::Removed
                } else {
                    Status::Added
                },
                summary: c.summary(),
                changes: Vec::new(),
            }),
            (None, None) => None,
        })
        .collect();
    Diff { hosts, clusters }
}

/// The aspects whose values differ (both lists come from the same `aspects` function, so
/// they hold the same fields in the same order).
fn changes(old: Vec<Aspect>, new: Vec<Aspect>) -> Vec<Change> {
    old.into_iter()
        .zip(new)
        .filter(|(o, n)| o.value != n.value)
        .map(|(o, n)| Change {
            field: n.field,
            old: o,
            new: n,
        })
        .collect()
}

fn diff_host(old: Option<&Host>, new: Option<&Host>) -> Option<HostDiff> {
    let (status, title, name) = match (old, new) {
        (Some(_), Some(n)) => (Status::Changed, n.title(), &n.name),
        (None, Some(n)) => (Status::Added, n.title(), &n.name),
        (Some(o), None) => (Status::Removed, o.title(), &o.name),
        (None, None) => return None,
    };
    let old_routes = old.map_or(&[][..], |h| h.routes.as_slice());
    let new_routes = new.map_or(&[][..], |h| h.routes.as_slice());
    let host_changes = match (old, new) {
        (Some(o), Some(n)) => changes(o.aspects(), n.aspects()),
        _ => Vec::new(),
    };
    let pairs = pair_routes(old_routes, new_routes);
    let moved = moved_routes(&pairs);
    let mut routes: Vec<RouteDiff> = Vec::new();
    for (idx, &(o, n)) in pairs.iter().enumerate() {
        let old_route = o.and_then(|i| old_routes.get(i));
        let new_route = n.and_then(|i| new_routes.get(i));
        let (status, changes) = match (old_route, new_route) {
            (Some(or), Some(nr)) => {
                let changes = changes(or.aspects(), nr.aspects());
                if !changes.is_empty() {
                    (Status::Changed, changes)
                } else if moved[idx] {
                    (Status::Moved, changes)
                } else {
                    continue;
                }
            }
            (None, Some(_)) => (Status::Added, Vec::new()),
            (Some(_), None) => (Status::Removed, Vec::new()),
            (None, None) => continue,
        };
        let label = new_route
            .or(old_route)
            .map(Route::label)
            .unwrap_or_default();
        routes.push(RouteDiff {
            label,
            status,
            old_position: o,
            new_position: n,
            moved: moved[idx],
            changes,
            old: old_route.cloned(),
            new: new_route.cloned(),
        });
    }
    // Reading order: by place on the new side, removed routes where they were.
    routes.sort_by_key(|r| {
        (
            r.new_position.or(r.old_position).unwrap_or(0),
            r.new_position.is_some(),
        )
    });
    if status == Status::Changed && host_changes.is_empty() && routes.is_empty() {
        return None;
    }
    Some(HostDiff {
        name: name.clone(),
        title,
        status,
        changes: host_changes,
        routes,
    })
}

/// How a route is found on the other side (see the module doc).
fn identity(route: &Route) -> String {
    match &route.name {
        Some(name) => format!("{}\0name\0{name}", route.vs_name),
        None => format!("{}\0match\0{:?}", route.vs_name, route.matches),
    }
}

/// Pairs of (old index, new index); a route without a partner is added or removed.
fn pair_routes(old: &[Route], new: &[Route]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut pending: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in old.iter().enumerate().rev() {
        pending.entry(identity(r)).or_default().push(i);
    }
    let mut partner_of_new: Vec<Option<usize>> = vec![None; new.len()];
    let mut paired_old = vec![false; old.len()];
    for (j, r) in new.iter().enumerate() {
        if let Some(i) = pending.get_mut(&identity(r)).and_then(Vec::pop) {
            partner_of_new[j] = Some(i);
            paired_old[i] = true;
        }
    }
    // Unnamed routes left over at the same rule index of the same VirtualService: the same
    // rule with a changed match.
    for (j, r) in new.iter().enumerate() {
        if partner_of_new[j].is_some() || r.name.is_some() {
            continue;
        }
        if let Some(i) = old.iter().enumerate().position(|(i, o)| {
            !paired_old[i]
                && o.name.is_none()
                && o.vs_name == r.vs_name
                && o.rule_index == r.rule_index
        }) {
            partner_of_new[j] = Some(i);
            paired_old[i] = true;
        }
    }
    let mut pairs: Vec<(Option<usize>, Option<usize>)> = partner_of_new
        .iter()
        .enumerate()
        .map(|(j, &i)| (i, Some(j)))
        .collect();
    pairs.extend(
        paired_old
            .iter()
            .enumerate()
            .filter(|(_, p)| !**p)
            .map(|(i, _)| (Some(i), None)),
    );
    pairs
}

/// For each pair, whether the route moved: paired routes outside a longest subsequence whose
/// old and new order agree.
fn moved_routes(pairs: &[(Option<usize>, Option<usize>)]) -> Vec<bool> {
    // Paired entries in old order; their new positions should increase.
    let mut paired: Vec<(usize, usize, usize)> = pairs
        .iter()
        .enumerate()
        .filter_map(|(k, p)| match *p {
            (Some(o), Some(n)) => Some((o, n, k)),
            _ => None,
        })
        .collect();
    paired.sort_unstable();
    let keep = longest_increasing(&paired.iter().map(|p| p.1).collect::<Vec<_>>());
    let mut moved = vec![false; pairs.len()];
    for (idx, &(_, _, k)) in paired.iter().enumerate() {
        if !keep[idx] {
            moved[k] = true;
        }
    }
    moved
}

/// Marks one longest strictly increasing subsequence (O(n log n), patience sorting).
fn longest_increasing(values: &[usize]) -> Vec<bool> {
    // tails[len] = index of the smallest tail of an increasing run of length len + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; values.len()];
    for (i, &v) in values.iter().enumerate() {
        let at = tails.partition_point(|&t| values[t] < v);
        prev[i] = at.checked_sub(1).map(|a| tails[a]);
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut keep = vec![false; values.len()];
    let mut cur = tails.last().copied();
    while let Some(i) = cur {
        keep[i] = true;
        cur = prev[i];
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::longest_increasing;

    #[test]
    fn longest_increasing_keeps_the_longest_run() {
        assert_eq!(
            longest_increasing(&[0, 1, 2, 3]),
            vec![true, true, true, true]
        );
        // One route moved from last to first: only it is outside the run.
        assert_eq!(
            longest_increasing(&[1, 2, 3, 0]),
            vec![true, true, true, false]
        );
        assert_eq!(longest_increasing(&[]), Vec::<bool>::new());
        assert_eq!(longest_increasing(&[2, 0, 1]), vec![false, true, true]);
    }
}
