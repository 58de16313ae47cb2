//! `cri-pull SOCKET IMAGE`: one CRI `runtime.v1.ImageService/PullImage` over containerd's
//! socket, as kubelet calls it (then `RemoveImage`, so the next pull fetches again).
//! Prints the image id, or the error and exit 1. Used by `examples/containerd-demo/run.sh`.

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sock, image] = args.as_slice() else {
        eprintln!("usage: cri-pull SOCKET IMAGE");
        std::process::exit(2);
    };
    match catrust_tests::containerd::cri_pull(Path::new(sock), image) {
        Ok(id) => println!("pulled {image} ({id})"),
        Err(e) => {
            println!("{e}");
            std::process::exit(1);
        }
    }
}
