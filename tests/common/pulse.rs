//! A private PulseAudio daemon with null sinks: real, real-time paced sound devices on a
//! machine with no sound card. cpal reaches it through ALSA's pulse plugin, which takes
//! over ALSA's default device while a daemon runs. Each peer gets a "microphone" (the
//! monitor of a sink a test tone is played into) and a "speaker" (a sink whose monitor
//! the test records).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Pulse {
    daemon: Child,
    runtime: PathBuf,
    feeders: Vec<Child>,
}

/// The sample format the test talks to PulseAudio in.
const RAW: [&str; 3] = ["--format=s16le", "--rate=48000", "--channels=1"];

impl Pulse {
    /// Starts a daemon under `dir` with a null sink for each name.
    pub fn start(dir: &Path, sinks: &[&str]) -> Self {
        let runtime = dir.join("pulse-runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        let mut command = Command::new("pulseaudio");
        command
            .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--log-target=stderr"])
            .arg("--load=module-native-protocol-unix auth-anonymous=1")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("pulseaudio.err")).unwrap());
        for sink in sinks {
            command.arg(format!("--load=module-null-sink sink_name={sink} rate=48000 channels=1"));
        }
        let daemon = command.spawn().expect("starting pulseaudio (scripts/setup.sh installs it)");
        let pulse = Self { daemon, runtime, feeders: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pulse
            .command("pactl")
            .arg("info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "pulseaudio did not start: {}",
                std::fs::read_to_string(dir.join("pulseaudio.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        pulse
    }

    /// A PulseAudio client command that talks to this daemon.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("XDG_RUNTIME_DIR", &self.runtime).env("PULSE_SERVER", self.server());
        command
    }

    fn server(&self) -> String {
        format!("unix:{}", self.runtime.join("pulse/native").display())
    }

    /// Environment for a `chat` peer whose microphone is `mic`'s monitor and whose speaker is `speaker`.
    pub fn peer_env(&self, mic: &str, speaker: &str) -> Vec<(String, String)> {
        vec![
            ("XDG_RUNTIME_DIR".into(), self.runtime.display().to_string()),
            ("PULSE_SERVER".into(), self.server()),
            ("PULSE_SOURCE".into(), format!("{mic}.monitor")),
            ("PULSE_SINK".into(), speaker.into()),
        ]
    }

    /// Plays `samples` (48 kHz mono) into `sink`, as what a microphone there hears.
    pub fn play(&mut self, sink: &str, samples: &[f32], dir: &Path) {
        let path = dir.join(format!("{sink}.raw"));
        let bytes: Vec<u8> = samples.iter().flat_map(|&s| ((s * 32767.0) as i16).to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        let child = self
            .command("pacat")
            .args(["--playback", "--raw", &format!("--device={sink}")])
            .args(RAW)
            .arg(&path)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.feeders.push(child);
    }

    /// Starts recording what `sink` plays; `Recording::stop` returns the samples.
    pub fn record(&self, sink: &str, dir: &Path) -> Recording {
        let path = dir.join(format!("{sink}.recorded.raw"));
        let child = self
            .command("parec")
            .args(["--raw", &format!("--device={sink}.monitor")])
            .args(RAW)
            .stdout(std::fs::File::create(&path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Recording { child, path }
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        for feeder in &mut self.feeders {
            let _ = feeder.kill();
            let _ = feeder.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

pub struct Recording {
    child: Child,
    path: PathBuf,
}

impl Recording {
    /// Stops once `seconds` of sound have been written (parec starts late and writes in
    /// bursts, so a fixed wait gives a varying length), or after `timeout` regardless.
    pub fn stop_after(self, seconds: f64, timeout: Duration) -> Vec<f32> {
        let wanted = (seconds * 48_000.0) as u64 * 2;
        let deadline = Instant::now() + timeout;
        while std::fs::metadata(&self.path).map_or(0, |m| m.len()) < wanted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop()
    }

    pub fn stop(mut self) -> Vec<f32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.path).unwrap();
        bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
    }
}
