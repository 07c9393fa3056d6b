//! Tesseract through its stable C API (`tesseract/capi.h`), loaded at run time from `libtesseract.so.5`.
//!
//! Why loaded rather than linked: the binary then builds with no Tesseract headers, and a server whose machine has no
//! Tesseract still starts (OCR is reported unavailable, and pictures are noted `unsupported`). The C API is the one
//! Tesseract keeps stable across releases; the functions used here are in every 4.x and 5.x release.
//!
//! One `TessBaseAPI` is not safe to use from two threads at once, and initialising one (loading the French and
//! English models) takes a few hundred milliseconds. So initialised handles wait in a process-wide idle list: a
//! recognition takes one (or makes one), uses it on its own thread only, and gives it back. A thread-local handle
//! per scan thread would be re-initialised each time tokio's blocking pool replaces an idle thread (after ten
//! seconds without work), on the upload's own time budget; the idle list is never larger than the number of
//! recognitions that ran at once (at most `media.max_concurrent_scans`).
//!
//! This is the one module of roomguard with `unsafe` code: every call into the library, each with the reason it is
//! sound next to it.

#![expect(
    unsafe_code,
    reason = "calls into Tesseract's C library, loaded at run time; the only foreign code roomguard calls"
)]

use std::{
    ffi::{CStr, CString, c_char, c_int, c_void},
    sync::{Mutex, OnceLock},
    time::Instant,
};

use libloading::Library;

/// The library's file name: the soname of Tesseract 5 (Debian 12 and later, Ubuntu 22.04 and later).
const LIBRARY: &str = "libtesseract.so.5";

/// The models loaded in every handle: French first (accents), English for the rest.
const LANGUAGES: &CStr = c"fra+eng";

/// `OEM_LSTM_ONLY`: the neural recogniser alone (Debian's models also carry the legacy one, slower and weaker).
const OEM_LSTM_ONLY: c_int = 1;

/// `PSM_AUTO`: page layout analysis without orientation detection (a band may hold several blocks: a stamp and a
/// reference beside it).
const PSM_AUTO: c_int = 3;

/// A region shorter than this many milliseconds of budget is not started: Tesseract checks its deadline between
/// words only, after the layout analysis, which alone takes tens of milliseconds.
const MIN_RECOGNITION_MS: u128 = 30;

/// The C API's functions, resolved once. The library is never unloaded, so the pointers stay valid.
struct Api {
    create: unsafe extern "C" fn() -> *mut c_void,
    delete: unsafe extern "C" fn(*mut c_void),
    init2: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, c_int) -> c_int,
    set_variable: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> c_int,
    set_page_seg_mode: unsafe extern "C" fn(*mut c_void, c_int),
    set_image: unsafe extern "C" fn(*mut c_void, *const u8, c_int, c_int, c_int, c_int),
    recognize: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    get_utf8_text: unsafe extern "C" fn(*mut c_void) -> *mut c_char,
    delete_text: unsafe extern "C" fn(*const c_char),
    clear: unsafe extern "C" fn(*mut c_void),
    monitor_create: unsafe extern "C" fn() -> *mut c_void,
    monitor_delete: unsafe extern "C" fn(*mut c_void),
    monitor_set_deadline_msecs: unsafe extern "C" fn(*mut c_void, c_int),
    version: unsafe extern "C" fn() -> *const c_char,
    /// Keeps the library loaded for the life of the process (it is in a `static`, never dropped).
    _library: Library,
}

/// What loading Tesseract gave: the API and its version, or why it cannot be used.
static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// Initialised handles not in use.
static IDLE: Mutex<Vec<Handle>> = Mutex::new(Vec::new());

impl Api {
    fn load() -> Result<Api, String> {
        // SAFETY: loading runs the library's initialisers (Tesseract's, Leptonica's, libgomp's); they only set up
        // their own state. Each symbol is given the type that `capi.h` declares for it, so every later call has the
        // signature the library was compiled with.
        unsafe {
            let library =
                Library::new(LIBRARY).map_err(|e| format!("cannot load {LIBRARY}: {e}"))?;
            macro_rules! symbol {
                ($name:literal) => {
                    *library
                        .get(concat!($name, "\0").as_bytes())
                        .map_err(|e| format!("{LIBRARY} has no {}: {e}", $name))?
                };
            }
            Ok(Api {
                create: symbol!("TessBaseAPICreate"),
                delete: symbol!("TessBaseAPIDelete"),
                init2: symbol!("TessBaseAPIInit2"),
                set_variable: symbol!("TessBaseAPISetVariable"),
                set_page_seg_mode: symbol!("TessBaseAPISetPageSegMode"),
                set_image: symbol!("TessBaseAPISetImage"),
                recognize: symbol!("TessBaseAPIRecognize"),
                get_utf8_text: symbol!("TessBaseAPIGetUTF8Text"),
                delete_text: symbol!("TessDeleteText"),
                clear: symbol!("TessBaseAPIClear"),
                monitor_create: symbol!("TessMonitorCreate"),
                monitor_delete: symbol!("TessMonitorDelete"),
                monitor_set_deadline_msecs: symbol!("TessMonitorSetDeadlineMSecs"),
                version: symbol!("TessVersion"),
                _library: library,
            })
        }
    }

    fn version(&self) -> String {
        // SAFETY: TessVersion returns a pointer to a static NUL-terminated string (or null, checked).
        unsafe {
            let version = (self.version)();
            if version.is_null() {
                return String::new();
            }
            CStr::from_ptr(version).to_string_lossy().into_owned()
        }
    }
}

/// Loads Tesseract (once per process) and initialises one handle with the French and English models, kept for the
/// first recognition. Returns Tesseract's version, or why OCR is unavailable.
pub(super) fn probe() -> Result<String, String> {
    let api = api()?;
    let handle = Handle::new(api)?;
    give_back(handle);
    Ok(api.version())
}

/// Limits Tesseract's OpenMP threads to one per recognition (`OMP_THREAD_LIMIT=1`), unless the environment already
/// sets a limit. Tesseract runs parts of its neural network on OpenMP threads; with several scans at once those
/// threads only compete for the same cores (on the 2-core test machine one page took 2.4 s with them, 0.84 s without).
/// libgomp reads the variable once, when Tesseract loads it, so this must come before the first OCR.
///
/// # Safety
/// No other thread may read or change the environment meanwhile: call it before the process starts threads.
pub unsafe fn limit_openmp_threads() {
    const LIMIT: &str = "OMP_THREAD_LIMIT";
    if std::env::var_os(LIMIT).is_none() {
        // SAFETY: the caller guarantees that no other thread reads or writes the environment now.
        unsafe { std::env::set_var(LIMIT, "1") };
    }
}

fn api() -> Result<&'static Api, String> {
    API.get_or_init(Api::load).as_ref().map_err(Clone::clone)
}

/// An 8-bit gray picture, rows top to bottom, `width` bytes each.
#[derive(Debug, Clone, Copy)]
pub(super) struct GrayView<'a> {
    pub(super) pixels: &'a [u8],
    pub(super) width: u32,
    pub(super) height: u32,
}

/// Why a recognition gave no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EngineError {
    /// Tesseract cannot be loaded or initialised (the reason for the operator).
    Unavailable(String),
    /// The deadline came before or during the recognition.
    OutOfTime,
    /// The picture is not one Tesseract takes (too large for its `int` sizes, or a failed recognition).
    Failed,
}

/// A handle taken for the regions of one picture, given back when dropped.
pub(super) struct Session {
    handle: Option<Handle>,
}

impl Session {
    /// Takes an idle handle (or initialises one).
    pub(super) fn new() -> Result<Session, EngineError> {
        let api = api().map_err(EngineError::Unavailable)?;
        let handle = take(api).map_err(EngineError::Unavailable)?;
        Ok(Session {
            handle: Some(handle),
        })
    }

    /// The text of `picture` (a whole picture, or a band of one: full-width rows are contiguous), recognised before
    /// `deadline`: lines separated by `\n`, as Tesseract writes them.
    ///
    /// Each region is given as an image of its own rather than through `TessBaseAPISetRectangle`: with a rectangle,
    /// Tesseract 5.3 read the stamp band of the 150 dpi fixture as noise ("LÉ Te es et De a") where the same rows
    /// given as an image read `DIFFUSION RESTREINTE`.
    pub(super) fn recognize(
        &mut self,
        picture: GrayView<'_>,
        deadline: Instant,
    ) -> Result<String, EngineError> {
        let Some(handle) = &self.handle else {
            return Err(EngineError::Failed);
        };
        let (Ok(width), Ok(height)) = (
            c_int::try_from(picture.width),
            c_int::try_from(picture.height),
        ) else {
            return Err(EngineError::Failed);
        };
        let expected = u64::from(picture.width) * u64::from(picture.height);
        if picture.pixels.len() as u64 != expected || expected == 0 {
            return Err(EngineError::Failed);
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        if left < MIN_RECOGNITION_MS {
            return Err(EngineError::OutOfTime);
        }
        let api = api().map_err(EngineError::Unavailable)?;
        let millis = c_int::try_from(left).unwrap_or(c_int::MAX);
        // SAFETY: `handle.raw` is an initialised TessBaseAPI used by this thread alone. `pixels` holds exactly
        // `width * height` bytes (checked above), one byte a pixel, `width` bytes a row, as the arguments say;
        // Tesseract copies them before SetImage returns. The monitor lives until after the recognition and is deleted
        // once. The text, when not null, is a NUL-terminated string that Tesseract allocated, read before it is given
        // back with TessDeleteText. GetUTF8Text is only called after a recognition that succeeded, so it never
        // starts one of its own without the deadline.
        unsafe {
            (api.set_image)(handle.raw, picture.pixels.as_ptr(), width, height, 1, width);
            let monitor = (api.monitor_create)();
            if monitor.is_null() {
                return Err(EngineError::Failed);
            }
            (api.monitor_set_deadline_msecs)(monitor, millis);
            let status = (api.recognize)(handle.raw, monitor);
            (api.monitor_delete)(monitor);
            if status != 0 {
                return Err(if Instant::now() >= deadline {
                    EngineError::OutOfTime
                } else {
                    EngineError::Failed
                });
            }
            let text = (api.get_utf8_text)(handle.raw);
            if text.is_null() {
                return Ok(String::new());
            }
            let owned = CStr::from_ptr(text).to_string_lossy().into_owned();
            (api.delete_text)(text);
            Ok(owned)
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let (Some(handle), Ok(api)) = (self.handle.take(), api()) {
            // SAFETY: the handle is initialised and used by this thread alone; Clear frees the image and the
            // results, keeping the models loaded.
            unsafe { (api.clear)(handle.raw) };
            give_back(handle);
        }
    }
}

/// An initialised `TessBaseAPI`, owned by whoever holds this value.
struct Handle {
    raw: *mut c_void,
}

// SAFETY: a handle is moved between threads (through the idle list), never shared: only its holder calls into it,
// and Tesseract keeps no per-thread state for a handle.
unsafe impl Send for Handle {}

impl Handle {
    fn new(api: &Api) -> Result<Handle, String> {
        // SAFETY: Create returns a new handle (or null, checked) that is deleted on every path by `Handle`'s drop;
        // Init2 and SetVariable get NUL-terminated strings that outlive the calls; a null data path means Tesseract's
        // own (TESSDATA_PREFIX, or where the distribution installs the models).
        unsafe {
            let raw = (api.create)();
            if raw.is_null() {
                return Err("Tesseract could not create a handle".to_owned());
            }
            let handle = Handle { raw };
            if (api.init2)(raw, std::ptr::null(), LANGUAGES.as_ptr(), OEM_LSTM_ONLY) != 0 {
                return Err(format!(
                    "Tesseract could not load the {} models (install tesseract-ocr-fra and tesseract-ocr-eng)",
                    LANGUAGES.to_string_lossy()
                ));
            }
            (api.set_page_seg_mode)(raw, PSM_AUTO);
            for (name, value) in SETTINGS {
                let (Ok(name), Ok(value)) = (CString::new(*name), CString::new(*value)) else {
                    continue;
                };
                (api.set_variable)(raw, name.as_ptr(), value.as_ptr());
            }
            Ok(handle)
        }
    }
}

/// Tesseract variables set on every handle.
const SETTINGS: &[(&str, &str)] = &[
    // Tesseract writes its warnings ("Estimating resolution as 213", "Empty page!!") to stderr by default: they say
    // nothing an operator can act on, and the log must not carry a document's traces.
    ("debug_file", "/dev/null"),
];

impl Drop for Handle {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            // SAFETY: the handle came from Create and is deleted exactly once, here.
            unsafe { (api.delete)(self.raw) };
        }
    }
}

/// An idle handle, or a new one.
fn take(api: &Api) -> Result<Handle, String> {
    let idle = IDLE.lock().ok().and_then(|mut idle| idle.pop());
    match idle {
        Some(handle) => Ok(handle),
        None => Handle::new(api),
    }
}

fn give_back(handle: Handle) {
    if let Ok(mut idle) = IDLE.lock() {
        idle.push(handle);
    }
}
