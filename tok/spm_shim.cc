// SPDX-License-Identifier: MIT
// The extern "C" shim over libsentencepiece (see spm_shim.h). C++17.
#include "spm_shim.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct cmv_spm {
	sentencepiece::SentencePieceProcessor sp;
};

static void set_err(char *err, size_t errlen, const std::string &msg)
{
	if (err && errlen)
		std::snprintf(err, errlen, "%s", msg.c_str());
}

extern "C" int cmv_spm__load(cmv_spm **out, const void *bytes, size_t len, char *err,
			     size_t errlen)
{
	*out = nullptr;
	try {
		cmv_spm *m = new cmv_spm;
		auto st = m->sp.LoadFromSerializedProto(
			std::string_view(static_cast<const char *>(bytes), len));
		if (!st.ok()) {
			set_err(err, errlen, st.ToString());
			delete m;
			return -2;
		}
		*out = m;
		return 0;
	} catch (const std::bad_alloc &) {
		return -1;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return -2;
	} catch (...) {
		set_err(err, errlen, "unknown C++ exception");
		return -2;
	}
}

extern "C" void cmv_spm__free(cmv_spm *m)
{
	delete m;
}

extern "C" size_t cmv_spm__vocab_size(const cmv_spm *m)
{
	return static_cast<size_t>(m->sp.GetPieceSize());
}

extern "C" int cmv_spm__encode(const cmv_spm *m, const char *text, size_t len, uint32_t **ids,
			       size_t *n, size_t *cap, char *err, size_t errlen)
{
	try {
		std::vector<int> v;
		auto st = m->sp.Encode(std::string_view(text, len), &v);
		if (!st.ok()) {
			set_err(err, errlen, st.ToString());
			return -2;
		}
		if (!ids) {
			*n += v.size();
			return 0;
		}
		if (*n + v.size() > *cap) {
			size_t want = *cap ? *cap : 256;
			while (want < *n + v.size())
				want *= 2;
			void *p = std::realloc(*ids, want * sizeof(uint32_t));
			if (!p)
				return -1;
			*ids = static_cast<uint32_t *>(p);
			*cap = want;
		}
		for (int id : v)
			(*ids)[(*n)++] = static_cast<uint32_t>(id);
		return 0;
	} catch (const std::bad_alloc &) {
		return -1;
	} catch (const std::exception &e) {
		set_err(err, errlen, e.what());
		return -2;
	} catch (...) {
		set_err(err, errlen, "unknown C++ exception");
		return -2;
	}
}

extern "C" long cmv_spm__piece(const cmv_spm *m, uint32_t id, char *out, size_t outcap)
{
	try {
		if (id >= static_cast<uint32_t>(m->sp.GetPieceSize()))
			return -1;
		int i = static_cast<int>(id);
		std::string s;
		if (m->sp.IsControl(i) || m->sp.IsUnknown(i)) {
			s = "";
		} else if (m->sp.IsByte(i)) {
			s.push_back(static_cast<char>(std::strtoul(m->sp.IdToPiece(i).c_str() + 3, nullptr, 16)));
		} else {
			s = m->sp.IdToPiece(i);
			std::string r;
			for (size_t k = 0; k < s.size(); k++) {
				if (s.compare(k, 3, "\xE2\x96\x81") == 0) {
					r.push_back(' ');
					k += 2;
				} else {
					r.push_back(s[k]);
				}
			}
			s = r;
		}
		std::memcpy(out, s.data(), s.size() < outcap ? s.size() : outcap);
		return static_cast<long>(s.size());
	} catch (...) {
		return -1;
	}
}
