//! Azure's naming rules for the names the aks target passes to `az` (Azure's
//! "Naming rules and restrictions for Azure resources": `Microsoft.Resources/resourceGroups`,
//! `Microsoft.ContainerService/managedClusters` and `…/agentPools`). Pure.
//!
//! The names become arguments of `az-commands.sh`; the rules make sure that nothing
//! but a name Azure would accept ever reaches the script (CT305).

/// Which Azure name a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// 1-90 Unicode letters or digits, `_ - . ( )`; not ending with `.`.
    ResourceGroup,
    /// 1-63 ASCII letters, digits, `_ -`; starts and ends with a letter or digit.
    Cluster,
    /// 1-12 lowercase ASCII letters and digits; starts with a letter (Linux pools;
    /// Windows pools, unsupported by custom CA trust, take 1-6).
    NodePool,
}

impl NameKind {
    /// The rule in words, for the finding's help.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::ResourceGroup => "1 to 90 letters, digits, `_`, `-`, `.`, `(` or `)`, not ending with `.`",
            NameKind::Cluster => "1 to 63 ASCII letters, digits, `_` or `-`, starting and ending with a letter or digit",
            NameKind::NodePool => "1 to 12 lowercase letters and digits, starting with a letter",
        }
    }

    /// Whether `name` follows the rule.
    pub fn accepts(self, name: &str) -> bool {
        let len = name.chars().count();
        match self {
            NameKind::ResourceGroup => {
                (1..=90).contains(&len)
                    && !name.ends_with('.')
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'))
            }
            NameKind::Cluster => {
                let b = name.as_bytes();
                (1..=63).contains(&b.len())
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
            }
            NameKind::NodePool => {
                let b = name.as_bytes();
                (1..=12).contains(&b.len())
                    && b[0].is_ascii_lowercase()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azures_rules() {
        use NameKind::*;
        for (kind, ok) in [
            (ResourceGroup, "rg-prod"),
            (ResourceGroup, "MC_rg(prod).west_ü"),
            (ResourceGroup, "東京"),
            (Cluster, "aks-prod_1"),
            (Cluster, "A"),
            (NodePool, "nodepool1"),
            (NodePool, "a23456789012"),
        ] {
            assert!(kind.accepts(ok), "{kind:?} {ok}");
        }
        for (kind, bad) in [
            (ResourceGroup, ""),
            (ResourceGroup, "rg."),
            (ResourceGroup, "rg prod"),
            (ResourceGroup, "rg\nx"),
            (ResourceGroup, "rg;x"),
            (ResourceGroup, "$(reboot)"),
            (ResourceGroup, "rg\u{202e}x"),
            (ResourceGroup, &"r".repeat(91)),
            (Cluster, "-aks"),
            (Cluster, "aks-"),
            (Cluster, "aks.prod"),
            (Cluster, "aks\nprod"),
            (Cluster, "äks"),
            (Cluster, &"a".repeat(64)),
            (NodePool, "1pool"),
            (NodePool, "Pool"),
            (NodePool, "old pool"),
            (NodePool, "pool-1"),
            (NodePool, "a234567890123"),
            (NodePool, ""),
        ] {
            assert!(!kind.accepts(bad), "{kind:?} {bad:?}");
        }
    }
}
