//! Per-step executors in one run (the seed's "ServerMix"): e.g. Sentinel-2 preprocessing,
//! tens of minutes per product, on AWS Batch, then the NDVI windows, a second each, on
//! Lambda (`geobutton run ndvi --preprocess --executor preprocess=batch,windows=lambda`).
//!
//! An [`ExecutorMix`] hands each step to the executor named for it, and the others to its
//! default. Which steps a pipeline has is known before it runs ([`crate::Pipeline::steps`]):
//! a name that is not one of them is refused at plan time, not silently run elsewhere.

use cloud::Store;

use super::{Executor, StepJob, Submission, TaskObserver};
use crate::error::DriverError;

/// `--executor`: one executor kind for every step (`lambda`), or a kind per step with an
/// optional default for the others (`preprocess=batch,windows=lambda`,
/// `lambda,preprocess=batch`; steps named nowhere run locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSpec {
    /// The kind of the steps not named.
    pub default: String,
    /// (step, kind), in the order given.
    pub steps: Vec<(String, String)>,
}

/// The executor kinds `--executor` takes.
pub const KINDS: [&str; 3] = ["local", "lambda", "batch"];

impl ExecutorSpec {
    /// Parses `KIND` or `[KIND,]STEP=KIND[,STEP=KIND…]`.
    pub fn parse(s: &str) -> Result<ExecutorSpec, DriverError> {
        let bad = |why: String| DriverError::Invalid(format!("--executor {s:?}: {why}"));
        let kind = |k: &str| -> Result<String, DriverError> {
            let k = k.trim().to_ascii_lowercase();
            if KINDS.contains(&k.as_str()) {
                Ok(k)
            } else {
                Err(bad(format!(
                    "{k:?} is not an executor (one of {})",
                    KINDS.join(", ")
                )))
            }
        };
        let mut default = None;
        let mut steps: Vec<(String, String)> = Vec::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(bad("an empty entry".into()));
            }
            match part.split_once('=') {
                None if default.is_none() => default = Some(kind(part)?),
                None => return Err(bad("two executors for the steps not named".into())),
                Some((step, k)) => {
                    let step = step.trim();
                    if step.is_empty()
                        || !step
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        return Err(bad(format!("{step:?} is not a step name")));
                    }
                    if steps.iter().any(|(s, _)| s == step) {
                        return Err(bad(format!("step {step} named twice")));
                    }
                    steps.push((step.to_string(), kind(k)?));
                }
            }
        }
        Ok(ExecutorSpec {
            default: default.unwrap_or_else(|| "local".to_string()),
            steps,
        })
    }

    /// The kinds used, each once (the default first).
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds = vec![self.default.as_str()];
        for (_, k) in &self.steps {
            if !kinds.contains(&k.as_str()) {
                kinds.push(k);
            }
        }
        kinds
    }

    /// Whether every step runs where this process runs.
    pub fn all_local(&self) -> bool {
        self.kinds() == ["local"]
    }

    /// Refuses step names that `pipeline` (with steps `known`) does not have.
    pub fn check_steps(&self, pipeline: &str, known: &[&str]) -> Result<(), DriverError> {
        for (step, _) in &self.steps {
            if !known.contains(&step.as_str()) {
                return Err(DriverError::Invalid(format!(
                    "--executor names step {step:?}, which the {pipeline} pipeline does not \
                     have (its steps: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Executors by step: each step's tasks go to the executor named for it, else the default.
pub struct ExecutorMix {
    default: Box<dyn Executor>,
    steps: Vec<(String, Box<dyn Executor>)>,
    description: String,
}

impl ExecutorMix {
    /// A mix whose steps all run on `default` until [`ExecutorMix::with_step`] names others.
    pub fn new(default: Box<dyn Executor>) -> ExecutorMix {
        let description = default.describe();
        ExecutorMix {
            default,
            steps: Vec::new(),
            description,
        }
    }

    /// Runs step `step` on `executor`.
    pub fn with_step(mut self, step: &str, executor: Box<dyn Executor>) -> ExecutorMix {
        self.steps.retain(|(s, _)| s != step);
        self.steps.push((step.to_string(), executor));
        self.description = std::iter::once(self.default.describe())
            .chain(
                self.steps
                    .iter()
                    .map(|(s, e)| format!("{s}={}", e.describe())),
            )
            .collect::<Vec<_>>()
            .join(",");
        self
    }

    /// The steps named, in order.
    pub fn named_steps(&self) -> Vec<&str> {
        self.steps.iter().map(|(s, _)| s.as_str()).collect()
    }

    fn executors(&self) -> impl Iterator<Item = &dyn Executor> {
        std::iter::once(self.default.as_ref()).chain(self.steps.iter().map(|(_, e)| e.as_ref()))
    }
}

impl Executor for ExecutorMix {
    fn name(&self) -> &'static str {
        if self.steps.is_empty() {
            self.default.name()
        } else {
            "mix"
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn step_executor(&self, step: &str) -> Option<&dyn Executor> {
        let e = self
            .steps
            .iter()
            .find(|(s, _)| s == step)
            .map_or(self.default.as_ref(), |(_, e)| e.as_ref());
        Some(super::for_step(e, step))
    }

    fn steps_named(&self) -> Vec<&str> {
        self.named_steps()
    }

    fn submit(
        &self,
        job: StepJob,
        store: &Store,
        observe: TaskObserver,
    ) -> Result<Box<dyn Submission>, DriverError> {
        let e = super::for_step(self, &job.step.name);
        e.submit(job, store, observe)
    }

    /// The memory of the first executor that sets one (the cost of a mixed run is priced
    /// attempt by attempt, at each attempt's own memory).
    fn memory_mb(&self) -> Option<u32> {
        self.executors().find_map(|e| e.memory_mb())
    }

    fn vcpus(&self) -> Option<f32> {
        self.executors().find_map(|e| e.vcpus())
    }

    fn region(&self) -> Option<String> {
        self.executors().find_map(|e| e.region())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::local::LocalExecutor;

    #[test]
    fn specs() {
        let s = ExecutorSpec::parse("lambda").unwrap();
        assert_eq!((s.default.as_str(), s.steps.len()), ("lambda", 0));
        let s = ExecutorSpec::parse("preprocess=batch, windows=Lambda").unwrap();
        assert_eq!(s.default, "local");
        assert_eq!(
            s.steps,
            [
                ("preprocess".to_string(), "batch".to_string()),
                ("windows".to_string(), "lambda".to_string())
            ]
        );
        assert_eq!(s.kinds(), ["local", "batch", "lambda"]);
        assert!(!s.all_local());
        let s = ExecutorSpec::parse("lambda,preprocess=batch").unwrap();
        assert_eq!(
            (s.default.as_str(), s.kinds()),
            ("lambda", vec!["lambda", "batch"])
        );
        assert!(ExecutorSpec::parse("local").unwrap().all_local());
        for (bad, why) in [
            ("ec2", "not an executor"),
            ("windows=fargate", "not an executor"),
            ("lambda,batch", "two executors"),
            ("windows=lambda,windows=batch", "named twice"),
            ("=lambda", "not a step name"),
            ("a b=lambda", "not a step name"),
            ("lambda,", "an empty entry"),
        ] {
            let e = ExecutorSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let s = ExecutorSpec::parse("preprocess=batch,tiles=lambda").unwrap();
        let e = s
            .check_steps("ndvi", &["preprocess", "windows", "merge"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("step \"tiles\"") && e.contains("preprocess, windows, merge"));
    }

    #[test]
    fn steps_go_to_their_executor() {
        let local = |n| -> Box<dyn Executor> {
            Box::new(LocalExecutor {
                concurrency: n,
                ..LocalExecutor::default()
            })
        };
        let mix = ExecutorMix::new(local(1)).with_step("windows", local(2));
        assert_eq!(mix.name(), "mix");
        assert_eq!(mix.describe(), "local,windows=local");
        assert_eq!(mix.named_steps(), ["windows"]);
        let plain = ExecutorMix::new(local(1));
        assert_eq!((plain.name(), plain.describe()), ("local", "local".into()));
        // The executor of a step is the named one, not the mix.
        let e = crate::exec::for_step(&mix, "windows");
        assert_eq!(e.name(), "local");
        assert!(std::ptr::addr_eq(e, mix.steps[0].1.as_ref()));
        let e = crate::exec::for_step(&mix, "merge");
        assert!(std::ptr::addr_eq(e, mix.default.as_ref()));
    }
}
