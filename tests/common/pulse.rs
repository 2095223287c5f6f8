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
    dir: PathBuf,
    runtime: PathBuf,
    sinks: Vec<String>,
    feeders: Vec<Child>,
}

/// The sample format the test talks to PulseAudio in.
const RAW: [&str; 3] = ["--format=s16le", "--rate=48000", "--channels=1"];

impl Pulse {
    /// Starts a daemon under `dir` with a null sink for each name.
    pub fn start(dir: &Path, sinks: &[&str]) -> Self {
        let runtime = dir.join("pulse-runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        let sinks: Vec<String> = sinks.iter().map(|s| s.to_string()).collect();
        let daemon = spawn_daemon(dir, &runtime, &sinks);
        let pulse = Self { daemon, dir: dir.to_path_buf(), runtime, sinks, feeders: Vec::new() };
        pulse.wait_until_ready();
        pulse
    }

    /// Kills the daemon (what it plays stops, every client is cut off) and starts a fresh
    /// one with the same sinks at the same address, as a sound server's restart does.
    pub fn restart(&mut self) {
        for mut feeder in self.feeders.drain(..) {
            let _ = feeder.kill();
            let _ = feeder.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        self.daemon = spawn_daemon(&self.dir, &self.runtime, &self.sinks);
        self.wait_until_ready();
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.command("pactl").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success()
        {
            assert!(
                Instant::now() < deadline,
                "pulseaudio did not start: {}",
                std::fs::read_to_string(self.dir.join("pulseaudio.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `pactl ARGS`; its output.
    pub fn pactl(&self, args: &[&str]) -> String {
        let output = self.command("pactl").args(args).output().unwrap();
        assert!(output.status.success(), "pactl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Moves every stream playing to `from` over to `to`, as a user picking another output
    /// does.
    pub fn move_streams(&self, from: &str, to: &str) {
        let sinks = self.pactl(&["list", "short", "sinks"]);
        let index = sinks.lines().find_map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields.get(1) == Some(&from)).then(|| fields[0].to_string())
        });
        let index = index.unwrap_or_else(|| panic!("no sink {from} in {sinks}"));
        let inputs = self.pactl(&["list", "short", "sink-inputs"]);
        let moved: Vec<&str> = inputs
            .lines()
            .filter(|l| l.split('\t').nth(1) == Some(index.as_str()))
            .filter_map(|l| l.split('\t').next())
            .collect();
        assert!(!moved.is_empty(), "nothing plays to {from}: {inputs}");
        for input in moved {
            self.pactl(&["move-sink-input", input, to]);
        }
    }

    /// Removes the sink `name` (its module), as unplugging a USB headset does.
    pub fn unload_sink(&self, name: &str) {
        let modules = self.pactl(&["list", "short", "modules"]);
        let argument = format!("sink_name={name}");
        let index = modules.lines().find_map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            let ours = fields.get(1) == Some(&"module-null-sink")
                && fields.get(2).is_some_and(|a| a.split_whitespace().any(|w| w == argument));
            ours.then(|| fields[0].to_string())
        });
        self.pactl(&["unload-module", &index.unwrap_or_else(|| panic!("no module for {name} in {modules}"))]);
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
    ///
    /// While it records, a silent stream plays into the sink at 10 ms latency, as a sound
    /// card's clock would take samples. An idle null sink renders in 2 s blocks instead: when
    /// a speaker being reopened left it without a stream, the recording got nothing for up to
    /// 2 s ("only 85915 samples"), and the fresh stream waited as long for its first samples
    /// to be taken. Outside the recording the sinks stay null sinks, idle blocks and all.
    pub fn record(&self, sink: &str, dir: &Path) -> Recording {
        let clock = self
            .command("pacat")
            .args(["--playback", "--raw", "--latency-msec=10", &format!("--device={sink}")])
            .args(RAW)
            .stdin(std::fs::File::open("/dev/zero").unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let path = dir.join(format!("{sink}.recorded.raw"));
        let child = self
            .command("parec")
            .args(["--raw", &format!("--device={sink}.monitor")])
            .args(RAW)
            .stdout(std::fs::File::create(&path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Recording { child, clock, path }
    }
}

/// Starts `pulseaudio` with its socket under `runtime` and a null sink for each name.
fn spawn_daemon(dir: &Path, runtime: &Path, sinks: &[String]) -> Child {
    let mut command = Command::new("pulseaudio");
    command
        .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--log-target=stderr"])
        .arg("--load=module-native-protocol-unix auth-anonymous=1")
        .env("XDG_RUNTIME_DIR", runtime)
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("pulseaudio.err")).unwrap());
    for sink in sinks {
        command.arg(format!("--load=module-null-sink sink_name={sink} rate=48000 channels=1"));
    }
    command.spawn().expect("starting pulseaudio (scripts/setup.sh installs it)")
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
    /// The silent stream that keeps the sink running in real time.
    clock: Child,
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
        for child in [&mut self.child, &mut self.clock] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let bytes = std::fs::read(&self.path).unwrap();
        bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
    }
}
