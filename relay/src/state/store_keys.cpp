#include "state/store_keys.h"

#include <dirent.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "keyrelay/ascii.h"
#include "state/crypto.h"
#include "state/files.h"

namespace keyrelay::relay {

using namespace files;

std::string store_key_id(std::string_view key) { return sha256_hex(key).substr(0, 8); }

namespace {

Error write_failed(const std::string& what, const std::string& path, int err) {
    return make_error("store.write_failed", "Could not " + what + " " + path + ": " + errno_text(err) + ".",
                      "Check that the data directory exists, is owned by the user running keyrelay, and that the "
                      "disk is not full or read-only.");
}

Result<std::string> read_key_file(const std::string& path) {
    std::string text;
    struct stat st {};
    if (int err = read_file(path, text, &st); err != 0) {
        return make_error("store.key_file_unreadable", "Could not read the store key file " + path + ": " +
                                                           errno_text(err) + ".",
                          "Make the file readable by the user running keyrelay (chmod 600, owned by that user), or "
                          "set KEYRELAY_STORE_KEY instead.");
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error("store.key_file_unreadable", "The store key file " + path + " is not a regular file.",
                          "Replace it with a file holding 64 hex characters, mode 0600, or set KEYRELAY_STORE_KEY.");
    }
    if ((st.st_mode & 077) != 0) {
        OPENSSL_cleanse(text.data(), text.size());
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
        return make_error("store.key_file_permissions",
                          "The store key file " + path + " is readable by group or others (mode " + mode + ").",
                          "This key decrypts every stored token: run `chmod 600 " + path +
                              "` (and consider rotating the key if others could read it), then start again.");
    }
    auto key = parse_store_key(text);
    OPENSSL_cleanse(text.data(), text.size());
    if (!key) {
        return make_error("store.bad_key_length", "The store key file " + path + " does not hold a valid key: " +
                                                      key.error().message,
                          "store.key must hold 64 hex characters. If it was damaged, restore it from a backup: the "
                          "stored tokens cannot be decrypted without it. Do not replace it with a new key while "
                          "tokens.json exists.");
    }
    return key;
}

// Creates <data_dir>/store.key with a fresh key, atomically: the key is written to a temp file and link(2)ed into
// place, so two processes starting together end up with one key (the loser reads the winner's file).
Result<std::string> generate_key_file(const std::string& data_dir, const std::string& path) {
    if (int err = make_dirs(data_dir); err != 0) return write_failed("create the data directory", data_dir, err);
    std::string key = random_bytes(32);
    std::string text = to_hex(key) + "\n";
    std::string tmp;
    int err = write_temp(path, text, tmp);
    OPENSSL_cleanse(text.data(), text.size());
    if (err != 0) return write_failed("write a temporary file next to", path, err);
    int linked = ::link(tmp.c_str(), path.c_str()) == 0 ? 0 : errno;
    ::unlink(tmp.c_str());
    if (linked == EEXIST) {
        OPENSSL_cleanse(key.data(), key.size());
        return read_key_file(path);
    }
    if (linked != 0) return write_failed("create", path, linked);
    if (int e = fsync_dir(data_dir); e != 0) return write_failed("fsync the directory", data_dir, e);
    return key;
}

}  // namespace

std::optional<std::string> generated_key_text(const std::string& data_dir) {
    std::string text;
    if (read_file(join_path(data_dir, "store.key"), text) != 0) return std::nullopt;
    return std::string(trim(text));
}

size_t remove_stale_temp_files(const std::string& data_dir) {
    DIR* dir = ::opendir(data_dir.empty() ? "." : data_dir.c_str());
    if (dir == nullptr) return 0;
    size_t removed = 0;
    while (const dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        for (const char* base : {"tokens.json.tmp.", "sessions.json.tmp.", "store.key.tmp."}) {
            if (name.rfind(base, 0) != 0) continue;
            std::string pid_text = name.substr(std::strlen(base));
            pid_text = pid_text.substr(0, pid_text.find('.'));
            bool digits = !pid_text.empty() && pid_text.size() <= 9 &&
                          std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits) break;
            pid_t pid = static_cast<pid_t>(std::strtol(pid_text.c_str(), nullptr, 10));
            bool running = pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
            if (!running && ::unlinkat(::dirfd(dir), name.c_str(), 0) == 0) ++removed;
            break;
        }
    }
    ::closedir(dir);
    return removed;
}

Result<StoreKeys> load_store_keys(const std::string& data_dir, const std::optional<std::string>& key_text,
                                  const std::optional<std::string>& previous_key_text) {
    StoreKeys out;
    std::string key;
    if (key_text) {
        auto parsed = parse_store_key(*key_text);
        if (!parsed) {
            Error e = parsed.error();
            e.message = "KEYRELAY_STORE_KEY: " + e.message;
            return e;
        }
        key = std::move(parsed.value());
    } else {
        out.key_file = join_path(data_dir, "store.key");
        struct stat st {};
        if (::lstat(out.key_file.c_str(), &st) == 0) {
            auto loaded = read_key_file(out.key_file);
            if (!loaded) return loaded.error();
            key = std::move(loaded.value());
        } else if (errno == ENOENT) {
            auto made = generate_key_file(data_dir, out.key_file);
            if (!made) return made.error();
            key = std::move(made.value());
            out.generated = true;
        } else {
            int err = errno;
            return make_error("store.key_file_unreadable",
                              "Could not look at the store key file " + out.key_file + ": " + errno_text(err) + ".",
                              "Check the data directory's owner and permissions (0700, the user running keyrelay), "
                              "or set KEYRELAY_STORE_KEY.");
        }
    }
    out.current_key_id = store_key_id(key);
    out.keys[out.current_key_id] = std::move(key);
    if (previous_key_text) {
        auto previous = parse_store_key(*previous_key_text);
        if (!previous) {
            return make_error("store.bad_key_length", "KEYRELAY_STORE_KEY_PREVIOUS: " + previous.error().message,
                              "KEYRELAY_STORE_KEY_PREVIOUS must be the old store key exactly as it was set before "
                              "(64 hex characters or base64 of 32 bytes); unset it when no rotation is in progress.");
        }
        std::string id = store_key_id(previous.value());
        out.keys.emplace(id, std::move(previous.value()));
    }
    return out;
}

}  // namespace keyrelay::relay
