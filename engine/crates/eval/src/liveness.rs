//! Presentation attack detection metrics in ISO/IEC 30107-3 vocabulary.
//!
//! Scores are *bona fide* scores: higher = more likely a live, bona fide
//! presentation; a presentation is classified bona fide iff `score >= threshold`.
//!
//! * APCER (attack presentation classification error rate), per PAI species
//!   (presentation attack instrument type, e.g. "print", "replay") = share of
//!   that species' attack presentations classified bona fide. The headline
//!   APCER is the **maximum over species** (ISO/IEC 30107-3 reports the worst
//!   species); `apcer_pooled` treats all attacks as one species.
//! * BPCER (bona fide presentation classification error rate) = share of
//!   bona fide presentations classified as attacks (`score < threshold`).
//! * BPCER at APCER = x (BPCER20 at 5 %, BPCER100 at 1 %): BPCER at the
//!   smallest threshold where every species' APCER ≤ x, i.e. the largest of
//!   the per-species thresholds chosen as in [`crate::FmrThreshold`] (same
//!   tie rule and [`SupportRule`], applied per species).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::scores::{check_labels, check_scores, sorted_asc, threshold_core, SupportRule, Unit};

/// Species name used when attacks carry no type labels.
pub const UNLABELLED_SPECIES: &str = "all";

/// Bona fide and attack presentation scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PadScores {
    /// Scores of bona fide presentations.
    pub bona_fide: Vec<f64>,
    /// Scores of attack presentations.
    pub attacks: Vec<f64>,
    /// PAI species of each attack, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_species: Option<Vec<String>>,
}

/// APCER of one PAI species.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeciesApcer {
    /// PAI species.
    pub species: String,
    /// Attack presentations of this species.
    pub n: usize,
    /// APCER of this species.
    pub apcer: f64,
}

/// PAD error rates at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PadAtThreshold {
    /// Threshold (bona fide iff `score >= threshold`).
    pub threshold: f64,
    /// Maximum APCER over PAI species.
    pub apcer: f64,
    /// APCER over all attacks pooled.
    pub apcer_pooled: f64,
    /// BPCER.
    pub bpcer: f64,
    /// APCER per species, sorted by name.
    pub per_species: Vec<SpeciesApcer>,
}

/// BPCER at a target APCER.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BpcerAtApcer {
    /// Target APCER (e.g. 0.05 for BPCER20).
    pub target_apcer: f64,
    /// Rates at the chosen threshold.
    pub at: PadAtThreshold,
}

/// [`PadScores`] validated and sorted per species.
#[derive(Debug, Clone)]
pub struct PadRates {
    bona_fide: Vec<f64>,
    species: BTreeMap<String, Vec<f64>>,
    n_attacks: usize,
    rule: SupportRule,
}

impl PadScores {
    /// Validate (non-empty, finite, label count) and sort.
    pub fn rates(&self) -> Result<PadRates> {
        check_scores("bona fide scores", &self.bona_fide)?;
        check_scores("attack scores", &self.attacks)?;
        let mut species: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        match &self.attack_species {
            Some(l) => {
                check_labels("attack_species", l.len(), self.attacks.len())?;
                for (s, &x) in l.iter().zip(&self.attacks) {
                    species.entry(s.clone()).or_default().push(x);
                }
            }
            None => {
                species.insert(UNLABELLED_SPECIES.into(), self.attacks.clone());
            }
        }
        for v in species.values_mut() {
            *v = sorted_asc(v);
        }
        Ok(PadRates {
            bona_fide: sorted_asc(&self.bona_fide),
            species,
            n_attacks: self.attacks.len(),
            rule: SupportRule::default(),
        })
    }
}

impl PadRates {
    /// Replace the support rule for BPCER at a target APCER.
    pub fn with_support_rule(mut self, rule: SupportRule) -> Self {
        self.rule = rule;
        self
    }

    /// Bona fide presentations.
    pub fn n_bona_fide(&self) -> usize {
        self.bona_fide.len()
    }

    /// Attack presentations.
    pub fn n_attacks(&self) -> usize {
        self.n_attacks
    }

    /// APCER (per species, max, pooled) and BPCER at `threshold`.
    pub fn at(&self, threshold: f64) -> PadAtThreshold {
        let accepted = |v: &[f64]| v.len() - v.partition_point(|&x| x < threshold);
        let mut pooled = 0;
        let per_species: Vec<SpeciesApcer> = self
            .species
            .iter()
            .map(|(name, v)| {
                let a = accepted(v);
                pooled += a;
                SpeciesApcer {
                    species: name.clone(),
                    n: v.len(),
                    apcer: a as f64 / v.len() as f64,
                }
            })
            .collect();
        let rejected = self.bona_fide.partition_point(|&x| x < threshold);
        PadAtThreshold {
            threshold,
            apcer: per_species.iter().map(|s| s.apcer).fold(0.0, f64::max),
            apcer_pooled: pooled as f64 / self.n_attacks as f64,
            bpcer: rejected as f64 / self.bona_fide.len() as f64,
            per_species,
        }
    }

    /// BPCER at the smallest threshold where every species' APCER ≤ `target`.
    /// [`EvalError::Unsupported`](crate::EvalError::Unsupported) if some species has too few attacks.
    pub fn bpcer_at_apcer(&self, target: f64) -> Result<BpcerAtApcer> {
        let mut th = f64::NEG_INFINITY;
        for v in self.species.values() {
            let t = threshold_core(v, &Unit, target, &self.rule, "attack presentations")?;
            th = th.max(t.threshold);
        }
        Ok(BpcerAtApcer {
            target_apcer: target,
            at: self.at(th),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EvalError;

    fn pad() -> PadScores {
        PadScores {
            bona_fide: vec![0.9, 0.8, 0.4, 0.7],
            attacks: vec![0.1, 0.5, 0.85, 0.2],
            attack_species: Some(vec![
                "print".into(),
                "print".into(),
                "replay".into(),
                "replay".into(),
            ]),
        }
    }

    #[test]
    fn apcer_bpcer_hand_computed() {
        let r = pad().rates().unwrap();
        let a = r.at(0.6);
        assert_eq!(a.per_species[0].species, "print");
        assert_eq!(a.per_species[0].apcer, 0.0);
        assert_eq!(a.per_species[1].apcer, 0.5);
        assert_eq!(a.apcer, 0.5);
        assert_eq!(a.apcer_pooled, 0.25);
        assert_eq!(a.bpcer, 0.25);
        // Ties: threshold equal to a score classifies it bona fide.
        let a = r.at(0.5);
        assert_eq!(a.per_species[0].apcer, 0.5);
        assert_eq!(a.bpcer, 0.25);
    }

    #[test]
    fn bpcer_at_apcer_takes_worst_species() {
        let r = pad()
            .rates()
            .unwrap()
            .with_support_rule(SupportRule::AT_LEAST_ONE);
        // APCER ≤ 0.5 per species: print allows 0.5 (threshold just above
        // 0.1), replay allows 0.2 (threshold just above 0.2): max is next_up(0.2).
        let b = r.bpcer_at_apcer(0.5).unwrap();
        assert_eq!(b.at.threshold, crate::next_up(0.2));
        assert_eq!(b.at.apcer, 0.5);
        assert_eq!(b.at.bpcer, 0.0);
        // Too few attacks per species for 5 % (need 20 under AT_LEAST_ONE).
        assert!(matches!(
            r.bpcer_at_apcer(0.05),
            Err(EvalError::Unsupported {
                required: 20,
                available: 2,
                ..
            })
        ));
    }

    #[test]
    fn bpcer20_bpcer100_on_larger_set() {
        // 100 attacks 0.00..0.99, bona fide 0.5..0.99 step 0.01 (50).
        let attacks: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let bona: Vec<f64> = (50..100).map(|i| f64::from(i) / 100.0).collect();
        let r = PadScores {
            bona_fide: bona,
            attacks,
            attack_species: None,
        }
        .rates()
        .unwrap()
        .with_support_rule(SupportRule::AT_LEAST_ONE);
        // APCER 5 %: 5 attacks (0.95..0.99) may pass: threshold next_up(0.94).
        // Bona fide below: 0.50..0.94 = 45 of 50 → BPCER 0.9.
        let b = r.bpcer_at_apcer(0.05).unwrap();
        assert_eq!(b.at.threshold, crate::next_up(0.94));
        assert!((b.at.bpcer - 0.9).abs() < 1e-12);
        let b = r.bpcer_at_apcer(0.01).unwrap();
        assert_eq!(b.at.threshold, crate::next_up(0.98));
        assert!((b.at.bpcer - 0.98).abs() < 1e-12);
        assert_eq!(b.at.per_species[0].species, UNLABELLED_SPECIES);
    }

    #[test]
    fn empty_is_error() {
        let p = PadScores {
            bona_fide: vec![],
            attacks: vec![0.1],
            attack_species: None,
        };
        assert!(matches!(p.rates(), Err(EvalError::Empty { .. })));
    }
}
