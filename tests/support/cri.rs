//! A blocking CRI client (kubelet's gRPC API) over containerd's unix socket, with the
//! `k8s-cri` types and tonic: image pulls for `containerd_e2e`, and pod sandboxes and
//! containers for `node_e2e`.

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{self as cri, ImageSpec};
use tonic::transport::Channel;

/// What a CRI `PullImage` returned: the image ref, or the gRPC status message.
pub type PullResult = Result<String, String>;

/// A connection to one CRI socket, with its own single-threaded runtime.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// A gRPC status as one line: `Code: message`.
fn status(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

impl Cri {
    /// [`Cri::call`] on the runtime service, with `req` cloned for each attempt.
    fn runtime_call<Req: Clone, T, Fut>(
        &self,
        req: Req,
        rpc: impl Fn(RuntimeServiceClient<Channel>, Req) -> Fut,
    ) -> Result<T, String>
    where
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call(|| rpc(self.runtime.clone(), req.clone()))
    }

    /// Runs one call, again while containerd restarts (its socket is briefly gone:
    /// `Unavailable`, or a "transport error" on the connection it closed; then its CRI
    /// plugin is "not initialized yet") for up to 30 s.
    fn call<T, Fut>(&self, mut f: impl FnMut() -> Fut) -> Result<T, String>
    where
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.rt.block_on(f()) {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if (s.code() == tonic::Code::Unavailable
                        || s.message().contains("transport error")
                        || s.message().contains("server is not initialized yet"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(s) => return Err(status(s)),
            }
        }
    }

    /// Dials `sock` (the URI tonic requires is ignored: the connector dials the socket).
    pub fn connect(sock: &Path) -> Result<Cri, String> {
        use hyper_util::rt::TokioIo;
        use tonic::transport::{Endpoint, Uri};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let sock = sock.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://localhost")
                    .unwrap()
                    .connect_timeout(Duration::from_secs(5))
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    }))
                    .await
            })
            .map_err(|e| format!("cannot connect to containerd: {e}"))?;
        Ok(Cri {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// `PullImage` as kubelet calls it, then (on success) `RemoveImage`, so the next
    /// pull fetches again.
    pub fn pull(&mut self, image: &str) -> PullResult {
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        let req = cri::PullImageRequest {
            image: Some(spec.clone()),
            ..Default::default()
        };
        // Seen once on a busy machine: `Unimplemented: unknown service
        // runtime.v1.ImageService` from a just-started containerd. Ask again for a few
        // seconds before reporting it (it is never a trust result either way).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let pulled = loop {
            let r = self.call(|| {
                let mut c = self.images.clone();
                let req = req.clone();
                async move {
                    tokio::time::timeout(Duration::from_secs(60), c.pull_image(req))
                        .await
                        .unwrap_or_else(|_| {
                            Err(tonic::Status::deadline_exceeded(
                                "PullImage did not answer within 60 s",
                            ))
                        })
                }
            });
            match r {
                Err(e)
                    if e.starts_with("Unimplemented") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                other => break other?,
            }
        };
        self.call(|| {
            let mut c = self.images.clone();
            let req = cri::RemoveImageRequest {
                image: Some(spec.clone()),
            };
            async move { c.remove_image(req).await }
        })
        .map_err(|e| format!("RemoveImage: {e}"))?;
        Ok(pulled.image_ref)
    }

    /// Whether the image is in the store (`ImageStatus`).
    pub fn has_image(&mut self, image: &str) -> Result<bool, String> {
        let req = cri::ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        };
        let r = self.call(|| {
            let mut c = self.images.clone();
            let req = req.clone();
            async move { c.image_status(req).await }
        })?;
        Ok(r.image.is_some())
    }

    pub fn run_pod_sandbox(&mut self, config: cri::PodSandboxConfig) -> Result<String, String> {
        let req = cri::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let r = self.runtime_call(
            req,
            |mut c, req| async move { c.run_pod_sandbox(req).await },
        )?;
        Ok(r.pod_sandbox_id)
    }

    pub fn create_container(
        &mut self,
        sandbox: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String, String> {
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.to_string(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let r = self.runtime_call(
            req,
            |mut c, req| async move { c.create_container(req).await },
        )?;
        Ok(r.container_id)
    }

    pub fn start_container(&mut self, id: &str) -> Result<(), String> {
        let req = cri::StartContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime_call(
            req,
            |mut c, req| async move { c.start_container(req).await },
        )?;
        Ok(())
    }

    /// `StopContainer` with a grace period (0: SIGKILL at once).
    pub fn stop_container(&mut self, id: &str, timeout_s: i64) -> Result<(), String> {
        let req = cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout: timeout_s,
        };
        self.runtime_call(req, |mut c, req| async move { c.stop_container(req).await })?;
        Ok(())
    }

    pub fn remove_container(&mut self, id: &str) -> Result<(), String> {
        let req = cri::RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.runtime_call(
            req,
            |mut c, req| async move { c.remove_container(req).await },
        )?;
        Ok(())
    }

    /// `StopPodSandbox` then `RemovePodSandbox` (containers included).
    pub fn remove_pod(&mut self, sandbox: &str) -> Result<(), String> {
        let id = sandbox.to_string();
        self.call(|| {
            let mut c = self.runtime.clone();
            let req = cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            };
            async move { c.stop_pod_sandbox(req).await }
        })?;
        self.call(|| {
            let mut c = self.runtime.clone();
            let req = cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            };
            async move { c.remove_pod_sandbox(req).await }
        })?;
        Ok(())
    }

    /// Every pod sandbox's id.
    pub fn pod_ids(&mut self) -> Result<Vec<String>, String> {
        let r = self.call(|| {
            let mut c = self.runtime.clone();
            let req = cri::ListPodSandboxRequest { filter: None };
            async move { c.list_pod_sandbox(req).await }
        })?;
        Ok(r.items.into_iter().map(|p| p.id).collect())
    }

    /// `ContainerStatus` (verbose): the status and the runtime's info (containerd puts
    /// the task's `pid` in `info["info"]`).
    pub fn container_status(
        &mut self,
        id: &str,
    ) -> Result<(cri::ContainerStatus, Option<u32>), String> {
        let req = cri::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: true,
        };
        let r = self.runtime_call(
            req,
            |mut c, req| async move { c.container_status(req).await },
        )?;
        let pid = r
            .info
            .get("info")
            .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
            .and_then(|v| v["pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p != 0);
        Ok((r.status.ok_or("ContainerStatus without a status")?, pid))
    }
}
